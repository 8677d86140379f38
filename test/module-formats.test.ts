import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

const root = path.join(__dirname, '..');

it('loads with require() and import, sharing one implementation', () => {
  const cjs = execFileSync(process.execPath, ['-e', "const b = require('.'); console.log(typeof b.Ring, typeof b.BlockIoError)"], { cwd: root, encoding: 'utf8' });
  expect(cjs.trim()).toBe('function function');
  const esm = execFileSync(process.execPath, ['--input-type=module', '-e',
    "import { Ring } from 'blockring'; import { createRequire } from 'node:module'; const r = createRequire(import.meta.url)('blockring'); console.log(Ring === r.Ring, new Ring({ depth: 4 }).engine)"],
    { cwd: root, encoding: 'utf8' });
  expect(esm.trim()).toBe('true io_uring');
});
