// Log-bucket latency histogram (HDR-style): exact below 256 ns, then 128
// sub-buckets per power of two, so any recorded value is off by < 0.8%.
// Fixed memory (one Float64Array), O(1) record, no per-sample storage.

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // sub-buckets per octave
const LINEAR = SUB * 2; // values below this have their own bucket
const MAX_EXP = 44; // 2^44 ns ≈ 4.9 h; larger values land in the last bucket
const BUCKETS = LINEAR + (MAX_EXP - SUB_BITS - 1) * SUB;

function bucketOf(v: number): number {
  if (v < LINEAR) return v < 0 ? 0 : Math.floor(v);
  const e = v < 0x100000000 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
  if (e >= MAX_EXP) return BUCKETS - 1;
  const shift = e - SUB_BITS;
  // A shift below 2^32 ns: Math.pow here was ~6% of a page-cache run's CPU.
  const top = v < 0x100000000 ? v >>> shift : Math.floor(v / 2 ** shift);
  return LINEAR + (e - SUB_BITS - 1) * SUB + (top - SUB);
}

// Highest value that maps to bucket b (what HdrHistogram reports).
function upperOf(b: number): number {
  if (b < LINEAR) return b;
  const k = b - LINEAR;
  const e = Math.floor(k / SUB) + SUB_BITS + 1;
  const shift = e - SUB_BITS;
  return ((k % SUB) + SUB + 1) * 2 ** shift - 1;
}

export interface HistogramSnapshot {
  counts: Float64Array;
  count: number;
  sum: number;
  min: number;
  max: number;
}

export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  count = 0;
  min = Infinity;
  max = 0;
  #sum = 0;

  /** Records one latency in nanoseconds. */
  record(ns: number): void {
    this.#counts[bucketOf(ns)]!++;
    this.count++;
    this.#sum += ns;
    if (ns > this.max) this.max = ns;
    if (ns < this.min) this.min = ns;
  }

  /** Records `n` requests with the same latency (one batch). */
  recordN(ns: number, n: number): void {
    this.#counts[bucketOf(ns)]! += n;
    this.count += n;
    this.#sum += ns * n;
    if (ns > this.max) this.max = ns;
    if (ns < this.min) this.min = ns;
  }

  /** The state, for posting from a worker thread (--numjobs). */
  snapshot(): HistogramSnapshot {
    return { counts: this.#counts.slice(), count: this.count, sum: this.#sum, min: this.min, max: this.max };
  }

  /** Adds another histogram's samples (one job of several). */
  merge(s: HistogramSnapshot): void {
    for (let b = 0; b < BUCKETS; b++) this.#counts[b]! += s.counts[b]!;
    this.count += s.count;
    this.#sum += s.sum;
    if (s.max > this.max) this.max = s.max;
    if (s.min < this.min) this.min = s.min;
  }

  get mean(): number {
    return this.count ? this.#sum / this.count : 0;
  }

  /**
   * The smallest recorded value v such that at least p% of samples are <= v
   * (fio's definition), within the bucket precision; never above max.
   */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.#counts[b]!;
      if (seen >= rank) return Math.min(upperOf(b), this.max);
    }
    return this.max;
  }
}

/** @internal exported for the test of the bucket arithmetic. */
export const _buckets = { bucketOf, upperOf, BUCKETS };
