// The size budget (issue: the core bundle minified + gzipped stays under 15 kB):
// bundles each entry minified, gzips it at level 9 and prints the figures; exits
// non-zero when the core is over budget. A measurement printed in CI, not a timed test.
// The React and element entries take the page's client: their figures are their own.
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

const BUDGET = 15 * 1024;
const ENTRIES = { core: "src/index.ts", react: "src/react/index.ts", element: "src/element/index.ts" };

let core = 0;
for (const [name, entry] of Object.entries(ENTRIES)) {
  const result = await build({ entryPoints: [entry], bundle: true, minify: true, format: "esm", target: "es2022", platform: "browser", external: ["react"], write: false, logLevel: "warning" });
  const code = result.outputFiles[0].contents;
  const gzipped = gzipSync(code, { level: 9 }).length;
  if (name === "core") core = gzipped;
  console.log(`${name}: ${code.length} bytes minified, ${gzipped} bytes gzipped${name === "core" ? ` (budget ${BUDGET})` : ""}`);
}
if (core > BUDGET) {
  console.error(`the core bundle is ${core - BUDGET} bytes over its budget of ${BUDGET} bytes gzipped`);
  process.exit(1);
}
