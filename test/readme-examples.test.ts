// Every ```js example in README.md runs as written (saved as example.mjs,
// `node example.mjs`), exits 0 without writing to stderr, and leaves nothing
// in the temp directory. The packaging test runs them again from the
// installed tarball.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { readmeExamples, runExample } from './helpers/readme-examples';
import { tempDir } from './helpers/tmp';

const ROOT = path.join(__dirname, '..');
const examples = readmeExamples(path.join(ROOT, 'README.md'));
let t: ReturnType<typeof tempDir>;

beforeAll(() => {
  t = tempDir();
  // A project where `blockring` resolves to this checkout, as an installed package would.
  fs.mkdirSync(path.join(t.dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(t.dir, 'node_modules', 'blockring'));
});
afterAll(() => t.cleanup());

it('the README has examples', () => {
  expect(examples.length).toBeGreaterThanOrEqual(7);
});

it.each(examples.map((e) => [e.line, e.code] as const))('the example at README.md line %i runs as written', (_line, code) => {
  const r = runExample(t.dir, code);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.leftovers).toEqual([]);
});
