// Builds the explorer into dist/: src/main.ts bundled (with preact, htm and @wisp/client from
// ../sdk/ts/src) into one minified ES module, app.js, beside src/index.html and src/app.css.
// The output is deterministic: the node embeds dist/ and CI checks a rebuild leaves it unchanged.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
mkdirSync(dist, { recursive: true });

await build({
  entryPoints: [join(here, "src", "main.ts")],
  outfile: join(dist, "app.js"),
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  // The client imports `ws` only under Node.js (browsers have WebSocket); never loaded here.
  external: ["ws"],
  sourcemap: false,
  legalComments: "eof", // keep the libraries' license notices
  charset: "utf8",
  logLevel: "warning",
});
for (const f of ["index.html", "app.css"]) copyFileSync(join(here, "src", f), join(dist, f));

for (const f of ["index.html", "app.js", "app.css"]) {
  console.log(`dist/${f}  ${statSync(join(dist, f)).size.toLocaleString("en-US")} bytes`);
}
