// Aligned memory for O_DIRECT tests: one allocAligned() slab carved into
// 4096-aligned buffers.
import { createRequire } from 'node:module';

const { allocAligned } = createRequire(import.meta.url)('../../dist/lib/index.js');

export const ALIGN = 4096;

export class AlignedArena {
  #slab;
  #next = 0;

  /** @param {number} bytes capacity */
  constructor(bytes) {
    this.#slab = allocAligned(Math.ceil(bytes / ALIGN) * ALIGN, ALIGN);
  }

  /**
   * A Buffer of `size` bytes at a 4096-aligned address.
   * @param {number} size
   * @returns {Buffer}
   */
  alloc(size) {
    const start = this.#next;
    const end = start + Math.ceil(size / ALIGN) * ALIGN;
    if (end > this.#slab.length) throw new RangeError('aligned arena exhausted');
    this.#next = end;
    return this.#slab.subarray(start, start + size);
  }

  /** Makes all memory reusable (callers must be done with earlier buffers). */
  reset() {
    this.#next = 0;
  }
}
