// Builds dist/: the ESM entry points for bundlers (readable, with source maps), a
// minified copy of each for pages that import it straight from a <script type="module">
// (the examples and the browser tests do), and the .d.ts files from tsc; then the
// React example into examples/build/.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";

import { build } from "esbuild";

export const ENTRIES = { index: "src/index.ts", react: "src/react/index.ts", element: "src/element/index.ts" };

rmSync("dist", { recursive: true, force: true });
// React is the host app's: never bundled.
const common = { bundle: true, external: ["react"], format: "esm", target: "es2022", platform: "browser", sourcemap: true, logLevel: "warning" };
await build({ ...common, entryPoints: ENTRIES, outdir: "dist" });
await build({ ...common, entryPoints: ENTRIES, outdir: "dist", minify: true, entryNames: "[name].min" });
execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
// The React example, with React bundled in: examples/ is served as is (demo, browser tests).
rmSync("examples/build", { recursive: true, force: true });
await build({
  ...common,
  external: [],
  entryPoints: { conversation: "examples/conversation.tsx" },
  outdir: "examples/build",
  jsx: "automatic",
  minify: true,
  define: { "process.env.NODE_ENV": '"production"' },
});
console.log("built dist/");
