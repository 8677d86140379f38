// A write log in the spirit of Linux's dm-log-writes: wraps a device and
// records every write and flush it is given, with when each was issued and
// completed on one sequence counter, so crash states can be rebuilt from
// the log: what a flush made durable, plus any subset of what came after.
// For testing formats and journals (qcow2's own tests use it).

export interface LoggedWrite {
  kind: 'write';
  offset: number;
  data: Buffer;
  issued: number;
  /** 0 while in flight or if it failed. */
  completed: number;
}
export interface LoggedFlush {
  kind: 'flush';
  issued: number;
  completed: number;
}
export type LogEntry = LoggedWrite | LoggedFlush;

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

export class WriteLog {
  readonly entries: LogEntry[] = [];
  #seq = 0;

  /** The current sequence number, for stamping events outside the log. */
  now(): number {
    return ++this.#seq;
  }

  /** A device that forwards to dev and logs its writes and flushes. */
  wrap<T extends LoggableDevice>(dev: T): LoggableDevice {
    const log = this;
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
        const view = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
        const e: LoggedWrite = { kind: 'write', offset: o, data: Buffer.from(view), issued: log.now(), completed: 0 };
        log.entries.push(e);
        const n = await dev.write(b, o);
        e.completed = log.now();
        return n;
      },
      async flush() {
        const e: LoggedFlush = { kind: 'flush', issued: log.now(), completed: 0 };
        log.entries.push(e);
        await dev.flush();
        e.completed = log.now();
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
   * its contents `initial` when logging began: every write that completed
   * before the last flush completed by then was issued is applied (durable);
   * of the writes issued before `crashAt` that are not, those `keep`
   * accepts are applied too, in completion order (in-flight ones last).
   */
  crashImage(initial: Buffer, crashAt: number, keep: (w: LoggedWrite) => boolean): Buffer {
    const last = this.flushes().filter((f) => f.completed < crashAt).pop();
    const durableBefore = last ? last.issued : 0;
    const writes = this.entries.filter((e): e is LoggedWrite => e.kind === 'write' && e.issued < crashAt);
    const chosen = writes.filter((w) => (w.completed > 0 && w.completed < durableBefore) || keep(w));
    chosen.sort((a, b) => (a.completed || Infinity) - (b.completed || Infinity));
    let size = initial.length;
    for (const w of chosen) size = Math.max(size, w.offset + w.data.length);
    const out = Buffer.alloc(size);
    initial.copy(out);
    for (const w of chosen) w.data.copy(out, w.offset);
    return out;
  }
}
