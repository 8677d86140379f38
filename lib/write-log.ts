// A write log in the spirit of Linux's dm-log-writes. Devices opened with
// `ring.open(path, { writeLog })` (raw files and a qcow2 image's file) are
// logged by the engine itself (native/engine/write_log.h): every write,
// discard, write-zeroes and flush as it reaches the kernel, whichever API
// or layer issued it, with when each was issued and completed on one
// sequence counter. Crash states are rebuilt from the log: what a flush
// made durable, plus any subset of what came after. `wrap()` logs a device
// outside the engine the same way. For testing formats and journals
// (qcow2's own tests use it).
import { native, type WriteLogHandle } from './native';

export interface LoggedWrite {
  kind: 'write';
  offset: number;
  data: Buffer;
  issued: number;
  /** 0 while in flight or if it failed. */
  completed: number;
}
/** A discard or write-zeroes: the range reads back as zeros afterwards (regular files). */
export interface LoggedZeroes {
  kind: 'zeroes';
  offset: number;
  length: number;
  issued: number;
  completed: number;
}
export interface LoggedFlush {
  kind: 'flush';
  issued: number;
  completed: number;
}
export type LogEntry = LoggedWrite | LoggedZeroes | LoggedFlush;
type LoggedChange = LoggedWrite | LoggedZeroes;

/** The device surface a WriteLog can wrap (a BlockDevice has it). */
export interface LoggableDevice {
  readonly path: string;
  readonly size: number;
  /** O_DIRECT alignment, when the device has one. */
  readonly offsetAlignment?: number;
  readonly memoryAlignment?: number;
  read(buffer: ArrayBufferView, offset: number): Promise<number>;
  write(buffer: ArrayBufferView, offset: number): Promise<number>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

const KIND = { write: 0, flush: 1, zeroes: 2 } as const;

export class WriteLog {
  /** @internal The engine's log (ring.open attaches it to devices). */
  readonly _native: WriteLogHandle = new native.WriteLog();
  readonly #entries: LogEntry[] = [];

  /** Every entry so far, in issue order (completed stamps as of now). */
  get entries(): readonly LogEntry[] {
    const [added, completed] = this._native.sync(this.#entries.length);
    for (const [kind, offset, length, data, issued] of added) {
      this.#entries.push(kind === KIND.write ? { kind: 'write', offset, data: data!, issued, completed: 0 }
        : kind === KIND.flush ? { kind: 'flush', issued, completed: 0 }
        : { kind: 'zeroes', offset, length, issued, completed: 0 });
    }
    for (let i = 0; i < this.#entries.length; i++) this.#entries[i]!.completed = completed[i]!;
    return this.#entries;
  }

  /** The current sequence number, for stamping events outside the log. */
  now(): number {
    return this._native.now();
  }

  /** A device that forwards to dev and logs its writes and flushes. */
  wrap<T extends LoggableDevice>(dev: T): LoggableDevice {
    const n = this._native;
    return {
      get path() {
        return dev.path;
      },
      get size() {
        return dev.size;
      },
      offsetAlignment: dev.offsetAlignment,
      memoryAlignment: dev.memoryAlignment,
      read: (b, o) => dev.read(b, o),
      async write(b, o) {
        const index = n.record(KIND.write, o, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
        const bytes = await dev.write(b, o);
        n.complete(index);
        return bytes;
      },
      async flush() {
        const index = n.record(KIND.flush, 0, 0);
        await dev.flush();
        n.complete(index);
      },
      close: () => dev.close(),
    };
  }

  /** Completed flushes, in completion order. */
  flushes(): LoggedFlush[] {
    return this.entries.filter((e): e is LoggedFlush => e.kind === 'flush' && e.completed > 0)
      .sort((a, b) => a.completed - b.completed);
  }

  /**
   * The device's contents after a crash at sequence point `crashAt`, given
   * its contents `initial` when logging began: every change that completed
   * before the last flush completed by then was issued is applied (durable);
   * of the changes issued before `crashAt` that are not, those `keep`
   * accepts are applied too, in completion order (in-flight ones last).
   */
  crashImage(initial: Buffer, crashAt: number, keep: (w: LoggedWrite | LoggedZeroes) => boolean): Buffer {
    const last = this.flushes().filter((f) => f.completed < crashAt).pop();
    const durableBefore = last ? last.issued : 0;
    const changes = this.entries.filter((e): e is LoggedChange => e.kind !== 'flush' && e.issued < crashAt);
    const chosen = changes.filter((w) => (w.completed > 0 && w.completed < durableBefore) || keep(w));
    chosen.sort((a, b) => (a.completed || Infinity) - (b.completed || Infinity));
    const end = (w: LoggedChange): number => w.offset + (w.kind === 'write' ? w.data.length : w.length);
    let size = initial.length;
    for (const w of chosen) if (w.kind === 'write') size = Math.max(size, end(w));
    const out = Buffer.alloc(size);
    initial.copy(out);
    for (const w of chosen) {
      if (w.kind === 'write') w.data.copy(out, w.offset);
      else out.fill(0, Math.min(w.offset, size), Math.min(end(w), size));
    }
    return out;
  }
}
