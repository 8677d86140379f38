// Argument checks shared by every public entry point. Each throws a
// TypeError (wrong type) or RangeError (bad value) carrying a Node-style
// `code`, before anything reaches the native side.

export type Tag = 'simple' | 'ordered' | 'head';

const TAGS: Record<Tag, number> = { simple: 0, ordered: 1, head: 2 };

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

export function checkView(v: unknown, name: string): ArrayBufferView {
  if (!ArrayBuffer.isView(v)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a Buffer, TypedArray or DataView`);
  }
  return v;
}

export function checkViews(v: unknown, name: string): ArrayBufferView[] {
  if (!Array.isArray(v)) throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be an array of buffers`);
  if (v.length === 0) throw rangeError('ERR_OUT_OF_RANGE', `${name} must not be empty`);
  for (let i = 0; i < v.length; i++) checkView(v[i], `${name}[${i}]`);
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

export function checkTag(v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'string' || !Object.prototype.hasOwnProperty.call(TAGS, v)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `tag must be 'simple', 'ordered' or 'head', got ${String(v)}`);
  }
  return TAGS[v as Tag];
}

export function checkOptions(v: unknown, name: string): Record<string, unknown> {
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be an object`);
  return v as Record<string, unknown>;
}

export function checkBool(v: unknown, name: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a boolean`);
  return v;
}
