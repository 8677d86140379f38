// HEAD OF QUEUE: enabled on arrival, ahead of every dormant request, even
// behind a pending ORDERED; proven from the trace of random tagged streams.
import { describe, expect, it } from 'vitest';

import { checkHeadFirstInLine, checkHeadOfQueue, checkPromptIssue, checkTaskRules, runTaggedStream, type Traced } from './helpers/tagged-stream';

const HEAD = 2;

function headsOverDormant(recs: Traced[]): number {
  return recs.filter((r) => r.tag === HEAD && r.dormantOlder.length > 0).length;
}

describe('HEAD OF QUEUE on random tagged streams (null engine)', () => {
  it.each([
    { seed: 11, latencyUs: [0, 400] as [number, number] },
    { seed: 12, latencyUs: 0 },
  ])('is issued at arrival and before every older dormant request, seed $seed', async ({ seed, latencyUs }) => {
    const recs = await runTaggedStream({ seed, total: 12_000, devices: 4, depth: 1024, maxInflight: 512, latencyUs });
    // The stream must actually put HEADs behind dormant requests.
    expect(headsOverDormant(recs)).toBeGreaterThan(100);
    expect(checkHeadOfQueue(recs)).toEqual([]);
    const heads = recs.filter((r) => r.tag === HEAD);
    expect(checkPromptIssue(heads)).toEqual([]);
    expect(checkTaskRules(recs)).toEqual([]);
  });

  it('jumps ahead of requests waiting for room in a full engine', async () => {
    const recs = await runTaggedStream({ seed: 13, total: 10_000, devices: 3, depth: 8, maxInflight: 300, latencyUs: [0, 200] });
    expect(headsOverDormant(recs)).toBeGreaterThan(100);
    expect(checkHeadOfQueue(recs)).toEqual([]);
    expect(checkHeadFirstInLine(recs, 8)).toEqual([]);
  });
});
