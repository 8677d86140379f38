// Replies to one client. Small messages (headers, option replies) are
// appended to a slab; data buffers are queued between slab segments; the
// lot goes to the socket in one corked write pass per tick, so a burst of
// completions costs one writev, not one syscall per reply.
import type { Socket } from 'node:net';

const SLAB = 64 << 10;
/** A client that does not read its replies gets no more requests served past this. */
const MAX_BACKLOG = 8 << 20;

export class ReplyWriter {
  #socket: Socket;
  #slab = Buffer.allocUnsafe(SLAB);
  #start = 0; // first byte of the slab not yet handed to the socket
  #end = 0; // next free byte
  #scheduled = false;
  #closed = false;
  readonly #flush = (): void => this.#write();

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** After STARTTLS: replies go through the TLS socket (everything queued was flushed). */
  set socket(s: Socket) {
    this.#socket = s;
  }

  /** Room for `n` bytes of small message in the slab; fill it at `.at`. */
  reserve(n: number): Buffer {
    if (this.#end + n > this.#slab.length) {
      this.#pushSlab();
      // Segments already handed to the socket keep the old slab alive.
      this.#slab = Buffer.allocUnsafe(Math.max(SLAB, n));
      this.#start = this.#end = 0;
    }
    this.at = this.#end;
    this.#end += n;
    this.#schedule();
    return this.#slab;
  }
  at = 0;

  /** Queues a data buffer after what was reserved so far; `done` runs once the socket is finished with it. */
  data(buf: Buffer, done: () => void): void {
    if (this.#closed) {
      done();
      return;
    }
    this.#pushSlab();
    this.#socket.write(buf, done as (err?: Error | null) => void);
    this.#schedule();
  }

  /** Sends what is queued now (before closing the socket, say). */
  flushNow(): void {
    this.#write();
  }

  close(): void {
    this.#closed = true;
  }

  /** Reply bytes the socket holds unsent: past MAX_BACKLOG the connection stops reading requests. */
  get backlogged(): boolean {
    return this.#socket.writableLength > MAX_BACKLOG;
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    this.#socket.cork();
    // After the current batch of completions (their promise reactions run
    // before the next tick callback).
    process.nextTick(this.#flush);
  }

  #pushSlab(): void {
    if (this.#end > this.#start && !this.#closed) {
      this.#socket.write(this.#slab.subarray(this.#start, this.#end));
      this.#start = this.#end;
    }
  }

  #write(): void {
    this.#pushSlab();
    if (this.#scheduled) {
      this.#scheduled = false;
      this.#socket.uncork();
    }
    // The socket holds every segment it was given; start a fresh slab so
    // nothing it still holds is overwritten.
    if (this.#end > SLAB / 2) {
      this.#slab = Buffer.allocUnsafe(SLAB);
      this.#start = this.#end = 0;
    }
  }
}
