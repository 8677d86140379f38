// Writes dist/lib/index.mjs: the ESM entry re-exporting the CommonJS build,
// so `import` and `require` share one module instance. Export names are read
// from the compiled file (no need to load the addon at build time).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist', 'lib');
const js = fs.readFileSync(path.join(dist, 'index.js'), 'utf8');
const names = new Set();
for (const m of js.matchAll(/Object\.defineProperty\(exports, "(\w+)"/g)) names.add(m[1]);
for (const m of js.matchAll(/^exports\.(\w+) = /gm)) names.add(m[1]);
names.delete('__esModule');
const body = [
  "import cjs from './index.js';",
  ...[...names].map((n) => `export const ${n} = cjs.${n};`),
  'export default cjs;',
  '',
].join('\n');
fs.writeFileSync(path.join(dist, 'index.mjs'), body);
