// Copies the non-TypeScript files the built program reads at run time (protobuf
// schemas, the OpenAPI document) from src/ to dist/, keeping their relative paths,
// and the built web console (src/console/assets, from build-console.mjs) whole.
import { cpSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const assetExtensions = ['.proto', '.json'];
const consoleAssets = join(src, 'console', 'assets');

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (path === consoleAssets) continue;
    if (statSync(path).isDirectory()) walk(path);
    else if (assetExtensions.some((ext) => name.endsWith(ext))) {
      const target = join(dist, relative(src, path));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(path, target);
    }
  }
}
walk(src);
// The console's files, whatever their extension (the console's server reads them beside itself).
cpSync(consoleAssets, join(dist, 'console', 'assets'), { recursive: true });
