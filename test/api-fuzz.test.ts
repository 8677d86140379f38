// Property-based fuzzing of every entry point on every engine (fast-check;
// see test/fixtures/api-fuzz.js): a seeded short run per engine, each in a
// child process so a crash fails here. `npm run fuzz` runs the long one.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tempDir } from './helpers/tmp';

const RUNNER = path.join(__dirname, 'fixtures', 'api-fuzz.js');
const SEED = 20261202;
const RUNS = 120;

let t: ReturnType<typeof tempDir>;
beforeAll(() => {
  t = tempDir();
});
afterAll(() => t.cleanup());

describe.each(['io_uring', 'libaio', 'threads', 'mmap', 'null'])('%s', (engine) => {
  it(`random call sequences with bad and edge-case arguments keep the contract and the shadow (seed ${SEED})`, () => {
    const r = spawnSync(process.execPath, [RUNNER, engine, String(SEED), String(RUNS), t.dir], { encoding: 'utf8', timeout: 120_000 });
    expect(r.signal, r.stderr).toBeNull();
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { runs: number; calls: number; failure?: string };
    expect(out.failure, out.failure).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    expect(out.runs).toBe(RUNS);
    expect(out.calls).toBeGreaterThan(RUNS);
  }, 130_000);
});
