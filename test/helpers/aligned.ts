// Page-aligned memory for O_DIRECT tests without a native helper: a
// WebAssembly.Memory's backing store is mapped by V8 at a page boundary, so
// offsets that are multiples of 4096 inside it are 4096-aligned addresses.
// One arena per test file; carve buffers with a bump allocator.

const WASM_PAGE = 65536;
export const ALIGN = 4096;

export class AlignedArena {
  readonly #memory: WebAssembly.Memory;
  #next = 0;

  constructor(bytes: number) {
    this.#memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / WASM_PAGE) });
  }

  /** A zeroed-on-creation Buffer of `size` bytes at a 4096-aligned address. */
  alloc(size: number): Buffer {
    const start = this.#next;
    const end = start + Math.ceil(size / ALIGN) * ALIGN;
    if (end > this.#memory.buffer.byteLength) throw new RangeError('aligned arena exhausted');
    this.#next = end;
    return Buffer.from(this.#memory.buffer, start, size);
  }

  /** Frees everything carved so far (callers must be done with it). */
  reset(): void {
    this.#next = 0;
  }
}
