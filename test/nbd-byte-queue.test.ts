// The NBD server's input queue: whatever chunking the socket delivers, the
// bytes taken, viewed and skipped are exactly the stream's bytes in order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { ByteQueue } from '../dist/lib/server/nbd/input.js';

describe('ByteQueue', () => {
  it('take, takeBuffer, view and skip see the stream in order across any chunking', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 400 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 64 })), { maxLength: 40 }),
      (bytes, cuts, ops) => {
        const stream = Buffer.from(bytes);
        const q = new ByteQueue();
        let pushed = 0;
        for (let i = 0; pushed < stream.length; i++) {
          const n = Math.min(cuts[i % cuts.length]!, stream.length - pushed);
          q.push(stream.subarray(pushed, pushed + n));
          pushed += n;
        }
        let pos = 0;
        for (const [op, want] of ops) {
          const n = Math.min(want, q.length);
          if (n === 0) break;
          const expected = stream.subarray(pos, pos + n);
          if (op === 0) {
            const dst = Buffer.alloc(n + 3);
            q.take(dst, 3, n);
            expect(dst.subarray(3).equals(expected)).toBe(true);
            pos += n;
          } else if (op === 1) {
            expect(q.takeBuffer(n).equals(expected)).toBe(true);
            pos += n;
          } else if (op === 2) {
            const v = q.view(n);
            expect(v.subarray(q.viewOffset, q.viewOffset + n).equals(expected)).toBe(true); // not consumed
          } else {
            q.skip(n);
            pos += n;
          }
          expect(q.length).toBe(stream.length - pos);
        }
        expect(q.takeBuffer(q.length).equals(stream.subarray(pos))).toBe(true);
      }), { numRuns: 500 });
  });
});
