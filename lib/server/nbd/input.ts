// Bytes received from a client, as a queue of the chunks the socket gave:
// message parsers take exactly what they need, in place when a message
// lies within one chunk, so a request header costs no copy or allocation.

export class ByteQueue {
  #chunks: Buffer[] = [];
  #head = 0; // read position in #chunks[0]
  length = 0;
  readonly #scratch = Buffer.alloc(64);

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.length += chunk.length;
  }

  /**
   * `n` (≤ 64) contiguous bytes at the front without consuming them: the
   * chunk itself when they lie in one (offset in `viewOffset`), else a
   * scratch copy. Requires length ≥ n.
   */
  view(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length - this.#head >= n) {
      this.viewOffset = this.#head;
      return first;
    }
    this.#copy(this.#scratch, 0, n, false);
    this.viewOffset = 0;
    return this.#scratch;
  }
  viewOffset = 0;

  /** Moves `n` bytes (≤ length) into dst at dstOffset. */
  take(dst: Buffer, dstOffset: number, n: number): void {
    this.#copy(dst, dstOffset, n, true);
  }

  /** A fresh Buffer of the next `n` bytes (option payloads; not the hot path). */
  takeBuffer(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    this.#copy(b, 0, n, true);
    return b;
  }

  skip(n: number): void {
    while (n > 0) {
      const first = this.#chunks[0] as Buffer;
      const k = Math.min(n, first.length - this.#head);
      this.#advance(k);
      n -= k;
    }
  }

  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.length = 0;
  }

  #copy(dst: Buffer, dstOffset: number, n: number, consume: boolean): void {
    let i = 0;
    let head = this.#head;
    let done = 0;
    while (done < n) {
      const c = this.#chunks[i] as Buffer;
      const k = Math.min(n - done, c.length - head);
      c.copy(dst, dstOffset + done, head, head + k);
      done += k;
      head += k;
      if (head === c.length) {
        i++;
        head = 0;
      }
    }
    if (consume) {
      this.#chunks.splice(0, i);
      this.#head = head;
      this.length -= n;
    }
  }

  #advance(k: number): void {
    this.#head += k;
    this.length -= k;
    if (this.#head === (this.#chunks[0] as Buffer).length) {
      this.#chunks.shift();
      this.#head = 0;
    }
  }
}
