// Page-aligned memory for O_DIRECT tests without a native helper: V8 maps a
// WebAssembly.Memory's backing store at a page boundary, so offsets that are
// multiples of 4096 inside it are 4096-aligned addresses.

const WASM_PAGE = 65536;
export const ALIGN = 4096;

export class AlignedArena {
  #memory;
  #next = 0;

  /** @param {number} bytes capacity */
  constructor(bytes) {
    this.#memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / WASM_PAGE) });
  }

  /**
   * A Buffer of `size` bytes at a 4096-aligned address.
   * @param {number} size
   * @returns {Buffer}
   */
  alloc(size) {
    const start = this.#next;
    const end = start + Math.ceil(size / ALIGN) * ALIGN;
    if (end > this.#memory.buffer.byteLength) throw new RangeError('aligned arena exhausted');
    this.#next = end;
    return Buffer.from(this.#memory.buffer, start, size);
  }

  /** Makes all memory reusable (callers must be done with earlier buffers). */
  reset() {
    this.#next = 0;
  }
}
