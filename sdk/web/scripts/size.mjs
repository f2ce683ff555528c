// The size budget (issue: the core bundle minified + gzipped stays under 15 kB):
// bundles the core entry minified, gzips it at level 9 and prints the figures; exits
// non-zero over budget. A measurement printed in CI, not a timed test.
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

const BUDGET = 15 * 1024;
const result = await build({ entryPoints: ["src/index.ts"], bundle: true, minify: true, format: "esm", target: "es2022", platform: "browser", write: false, logLevel: "warning" });
const code = result.outputFiles[0].contents;
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(`core bundle: ${code.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET})`);
if (gzipped > BUDGET) {
  console.error(`the core bundle is ${gzipped - BUDGET} bytes over its budget of ${BUDGET} bytes gzipped`);
  process.exit(1);
}
