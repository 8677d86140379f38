// Argument checks shared by every public entry point. Each throws a
// TypeError (wrong type) or RangeError (bad value) carrying a Node-style
// `code`, before anything reaches the native side.
import { markAsUntransferable } from 'node:worker_threads';
import { TAG } from './records';

export type Tag = 'simple' | 'ordered' | 'head';

function typeError(code: string, message: string): TypeError {
  const e = new TypeError(message) as TypeError & { code: string };
  e.code = code;
  return e;
}

function rangeError(code: string, message: string): RangeError {
  const e = new RangeError(message) as RangeError & { code: string };
  e.code = code;
  return e;
}

export { typeError, rangeError };

/** Any ArrayBufferView (over an ArrayBuffer or a SharedArrayBuffer) that is not detached. */
export function checkView(v: unknown, name: string): ArrayBufferView {
  if (!ArrayBuffer.isView(v)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a Buffer, TypedArray or DataView`);
  }
  // A DataView over a detached buffer throws on every access (a detached
  // TypedArray just has length 0).
  if (v instanceof DataView) {
    try {
      void v.byteLength;
    } catch {
      throw typeError('ERR_INVALID_ARG_VALUE', `${name} is a DataView over a detached ArrayBuffer`);
    }
  }
  return v;
}

/**
 * A view whose memory the kernel may use after this call returns (a request
 * in flight, a registered buffer). A resizable ArrayBuffer can shrink under
 * the kernel: refused. Any other ArrayBuffer is marked untransferable (as Node
 * marks its pooled buffers): transferring it (postMessage, structuredClone)
 * then copies instead of detaching it, so its memory can never be freed while
 * the kernel still reads or writes it.
 */
export function checkIoView(v: unknown, name: string): ArrayBufferView {
  const view = checkView(v, name);
  const ab = view.buffer as ArrayBuffer & { resizable?: boolean };
  if (ab.resizable === true) {
    throw typeError('ERR_INVALID_ARG_VALUE', `${name} is over a resizable ArrayBuffer, which could shrink under the kernel`);
  }
  if (!(ab instanceof SharedArrayBuffer)) markAsUntransferable(ab);
  return view;
}

export function checkViews(v: unknown, name: string): ArrayBufferView[] {
  if (!Array.isArray(v)) throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be an array of buffers`);
  if (v.length === 0) throw rangeError('ERR_OUT_OF_RANGE', `${name} must not be empty`);
  for (let i = 0; i < v.length; i++) checkIoView(v[i], `${name}[${i}]`);
  // A copy: in-flight requests pin their buffers through it, and the
  // caller may empty or reuse its own array right after the call.
  return (v as ArrayBufferView[]).slice();
}

/** A byte offset or length: a safe non-negative integer (bigint accepted). */
export function checkUint(v: unknown, name: string): number {
  if (typeof v === 'bigint') {
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw rangeError('ERR_OUT_OF_RANGE', `${name} must be between 0 and 2^53-1, got ${v}`);
    }
    return Number(v);
  }
  if (typeof v !== 'number') throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a number, got ${typeof v}`);
  if (!Number.isSafeInteger(v) || v < 0) {
    throw rangeError('ERR_OUT_OF_RANGE', `${name} must be a safe non-negative integer, got ${v}`);
  }
  return v;
}

export function checkTag(v: unknown, name = 'tag'): number {
  if (v === undefined) return 0;
  if (typeof v !== 'string' || !Object.prototype.hasOwnProperty.call(TAG, v)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `${name} must be 'simple', 'ordered' or 'head', got ${String(v)}`);
  }
  return TAG[v as Tag];
}

/**
 * An options object (undefined: none). A key outside `known` is refused: a
 * misspelt option (`readonly` for `readOnly`) must not silently do nothing.
 */
export function checkOptions(v: unknown, name: string, known: readonly string[]): Record<string, unknown> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be an object`);
  for (const key of Object.keys(v)) {
    if (known.includes(key)) continue;
    const near = nearest(key, known);
    throw typeError('ERR_INVALID_ARG_VALUE', `${name}.${key} is not a known option` +
      (near ? `; did you mean '${near}'?` : '') + ` (known: ${known.join(', ')})`);
  }
  return v as Record<string, unknown>;
}

// The known key closest to a misspelt one, if it is close enough to be what
// was meant: case-insensitive edit distance counting a swap of neighbours as
// one edit; a truncation (`align` for `alignment`) counts as one too.
function nearest(key: string, known: readonly string[]): string | null {
  const a = key.toLowerCase();
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const b = k.toLowerCase();
    const d = b.startsWith(a) || a.startsWith(b) ? 1 : editDistance(a, b);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      const up = d[i - 1]!;
      row[j] = Math.min(up[j]! + 1, row[j - 1]! + 1, up[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

export function checkBool(v: unknown, name: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a boolean`);
  return v;
}
