import { allocAligned } from '../aligned';

// A bounded cache of qcow2 metadata clusters (L2 tables and refcount
// blocks), keyed by host offset, least recently used first. Only clean
// tables are evicted; dirty ones stay until the image writes them back
// (which it does once dirty bytes pass half the bound), so the bound is
// `limit` plus at most one cluster per load in flight.

/** Buffers the image file reads or writes: 4096-aligned, so they also work with O_DIRECT. */
export function ioBuffer(n: number): Buffer {
  return n ? allocAligned(n, 4096).fill(0) : Buffer.alloc(0); // zeroed: tables and padding rely on it
}

export class Table {
  /** Bumped on every change; writeback marks a table clean only if no change raced it. */
  gen = 0;
  dirty = false;
  constructor(readonly offset: number, readonly buf: Buffer) {}
}

export class MetadataCache {
  readonly #tables = new Map<number, Table>();
  readonly #loading = new Map<number, Promise<void>>();
  #dirtyCount = 0;

  constructor(readonly limit: number, readonly clusterSize: number,
    readonly load: (offset: number, buf: Buffer) => Promise<void>) {}

  /** The table if it is cached now (no await between this and its use). */
  peek(offset: number): Table | undefined {
    const t = this.#tables.get(offset);
    if (t) {
      this.#tables.delete(offset);
      this.#tables.set(offset, t);
    }
    return t;
  }

  /** Resolves once `offset` was loaded; callers peek again right after. */
  fetch(offset: number): Promise<void> {
    let p = this.#loading.get(offset);
    if (!p) {
      const buf = ioBuffer(this.clusterSize);
      p = this.load(offset, buf).then(() => {
        if (!this.#tables.has(offset)) {
          this.#evict();
          this.#tables.set(offset, new Table(offset, buf));
        }
      }).finally(() => this.#loading.delete(offset));
      this.#loading.set(offset, p);
    }
    return p;
  }

  /** Loads (if needed) and returns the table, with no await after the last check. */
  async get(offset: number): Promise<Table> {
    for (;;) {
      const t = this.peek(offset);
      if (t) return t;
      await this.fetch(offset);
    }
  }

  /** A new, zeroed (or given) table that has never been on disk. */
  create(offset: number, buf?: Buffer): Table {
    this.#evict();
    const t = new Table(offset, buf ?? ioBuffer(this.clusterSize));
    this.#tables.set(offset, t);
    this.markDirty(t);
    return t;
  }

  markDirty(t: Table): void {
    t.gen++;
    if (!t.dirty) {
      t.dirty = true;
      this.#dirtyCount++;
    }
    // Evicted while clean between a peek and this change: put it back.
    if (this.#tables.get(t.offset) !== t) this.#tables.set(t.offset, t);
  }

  markClean(t: Table, gen: number): void {
    if (t.dirty && t.gen === gen) {
      t.dirty = false;
      this.#dirtyCount--;
    }
  }

  dirtyTables(): Table[] {
    const out: Table[] = [];
    for (const t of this.#tables.values()) if (t.dirty) out.push(t);
    return out;
  }

  get dirtyBytes(): number {
    return this.#dirtyCount * this.clusterSize;
  }

  get bytes(): number {
    return this.#tables.size * this.clusterSize;
  }

  #evict(): void {
    if ((this.#tables.size + 1) * this.clusterSize <= this.limit) return;
    for (const [off, t] of this.#tables) {
      if ((this.#tables.size + 1) * this.clusterSize <= this.limit) return;
      if (!t.dirty) this.#tables.delete(off);
    }
  }
}
