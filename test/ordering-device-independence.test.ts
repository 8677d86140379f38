// Tags on one device never hold back another device, and releases are never
// lost: with room in the engine, every request is issued at the first moment
// its own device's rules allow, before any later completion anywhere.
import { describe, expect, it } from 'vitest';

import { checkPromptIssue, checkTaskRules, runTaggedStream, type Traced } from './helpers/tagged-stream';

const SIMPLE = 0;
const ORDERED = 1;

describe('device independence and prompt release (null engine)', () => {
  it('random tags on 4 devices: each request issued as soon as its device allows', async () => {
    const recs = await runTaggedStream({ seed: 21, total: 12_000, devices: 4, depth: 1024, maxInflight: 512, latencyUs: [0, 500] });
    expect(checkPromptIssue(recs)).toEqual([]);
    expect(checkTaskRules(recs)).toEqual([]);
  });

  it('an all-ORDERED device does not slow an all-SIMPLE one', async () => {
    const recs = await runTaggedStream({
      seed: 22, total: 10_000, devices: 2, depth: 1024, maxInflight: 400, latencyUs: [0, 300],
      tagFor: (dev) => (dev === 0 ? ORDERED : SIMPLE),
    });
    const simple: Traced[] = recs.filter((r) => r.dev === 1);
    // Every SIMPLE request on device 1 was issued at its arrival.
    expect(simple.length).toBeGreaterThan(4000);
    expect(checkPromptIssue(simple)).toEqual([]);
    expect(checkPromptIssue(recs)).toEqual([]);
    expect(checkTaskRules(recs)).toEqual([]);
  });
});
