// SIMPLE and ORDERED semantics, proven from the trace of random streams of
// tagged requests over several devices on the null engine.
import { describe, expect, it } from 'vitest';

import { checkResults, checkTaskRules, runTaggedStream } from './helpers/tagged-stream';

describe('task-set rules on random tagged streams (null engine)', () => {
  it.each([
    { seed: 1, latencyUs: [0, 300] as [number, number] },
    { seed: 2, latencyUs: 0 },
    { seed: 3, latencyUs: [0, 2000] as [number, number] },
  ])('12,000 requests over 4 devices, seed $seed, latency $latencyUs µs', async ({ seed, latencyUs }) => {
    const recs = await runTaggedStream({ seed, total: 12_000, devices: 4, depth: 1024, maxInflight: 512, latencyUs });
    expect(recs).toHaveLength(12_000);
    expect(checkResults(recs)).toEqual([]);
    expect(checkTaskRules(recs)).toEqual([]);
  });

  it('hold when the engine is full and enabled requests wait for room', async () => {
    // depth 16 with up to 400 in flight: most enabled requests queue for room.
    const recs = await runTaggedStream({ seed: 4, total: 10_000, devices: 3, depth: 16, maxInflight: 400, latencyUs: [0, 200] });
    expect(checkResults(recs)).toEqual([]);
    expect(checkTaskRules(recs)).toEqual([]);
  });
});
