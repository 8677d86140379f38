// Guards: an idle ring holding the process open, process.exit with requests
// in flight crashing or hanging, and a completion handler's exception being
// swallowed or aborting the process instead of being an uncaught exception.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

import { fileTempDir, fixtures } from './helpers/lifetime';

const t = fileTempDir();

it('an idle ring lets the process exit', () => {
  const r = spawnSync(process.execPath, [path.join(fixtures, 'exit-inflight.js'), 'idle', path.join(t.dir, 'idle.img')], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.signal).toBeNull();
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('idle');
});

it('process.exit with requests in flight exits cleanly', () => {
  const r = spawnSync(process.execPath, [path.join(fixtures, 'exit-inflight.js'), 'exit', path.join(t.dir, 'exit.img')], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.signal).toBeNull();
  expect(r.status).toBe(7);
});

it('an exception thrown by a completion handler is an ordinary uncaught exception', () => {
  const r = spawnSync(process.execPath, [path.join(fixtures, 'exit-inflight.js'), 'throw', path.join(t.dir, 'throw.img')], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(r.signal).toBeNull();
  expect(r.status).toBe(1);
  expect(r.stderr).toContain('boom from completion');
});
