// Builds a JavaScript plugin into a component: node build.mjs APP.js WORLD OUT.wasm
//
// Drives componentize-js through its JS API (its `jco componentize` CLI route fails here),
// with `wasi:http` and the fetch event left out: they would add `wasi:http` imports and an
// incoming-handler export the gateway's host does not provide, so it would refuse the
// component. componentize-js comes from $COMPONENTIZE_JS_DIR (a folder with node_modules),
// else target/plugin-tools/js (install-tools.sh).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [app, world, out] = process.argv.slice(2);
if (!app || !world || !out) {
  console.error('usage: node build.mjs APP.js WORLD OUT.wasm');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const tools = process.env.COMPONENTIZE_JS_DIR || join(root, 'target/plugin-tools/js');
let componentize;
try {
  // The package exports an `import` entry only (no `require`), so follow its manifest.
  const pkg = join(tools, 'node_modules/@bytecodealliance/componentize-js');
  const manifest = JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8'));
  ({ componentize } = await import(pathToFileURL(join(pkg, manifest.exports.import)).href));
} catch (e) {
  console.error(`componentize-js not found under ${tools}: run plugins/sdk-js/install-tools.sh\n${e}`);
  process.exit(127);
}

// componentize-js maps the working directory into the component while it initialises it, and
// resolves the app's imports there: run from the closest folder holding both the app and this
// SDK, so the app's relative import of `portico.js` resolves.
const appPath = resolve(app);
const appDir = dirname(appPath);
let common = here;
while (relative(common, appDir).startsWith('..')) {
  common = dirname(common);
}
const outPath = resolve(out);
process.chdir(common);
const sourcePath = relative(common, appPath);
const { component } = await componentize({
  sourcePath,
  witPath: join(root, 'wit'),
  worldName: world,
  disableFeatures: ['http', 'fetch-event'],
});
await mkdir(dirname(outPath), { recursive: true });
await writeFile(outPath, component);
console.log(`built ${out} (${component.length} bytes)`);
