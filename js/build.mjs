// Bundles every widget entry js/src/<widget>.js (a module with `export default`, the
// anywidget view) into one self-contained ES module dfwidgets/static/<widget>.js
// (anywidget's _esm). Shared code lives in js/src/lib/. No network access at run time.
import * as esbuild from "esbuild";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, "src");
// `node build.mjs labeler` builds one entry; no argument builds them all.
const only = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const entryPoints = readdirSync(srcDir)
  .filter((f) => /\.(js|ts)$/.test(f))
  .filter((f) => /^export default /m.test(readFileSync(join(srcDir, f), "utf8")))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.(js|ts)$/, "")))
  .map((f) => join(srcDir, f));

const options = {
  entryPoints,
  bundle: true,
  format: "esm",
  target: ["es2020"],
  outdir: join(here, "..", "dfwidgets", "static"),
  minify: !process.argv.includes("--watch"),
  sourcemap: false,
  loader: { ".css": "text" },
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
