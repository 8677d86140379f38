import os from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(os.constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** The errno name ('EIO', 'ENOSPC', ...) for an errno value (either sign, as util.getSystemErrorName). */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return errnoNames.get(n) ?? 'UNKNOWN'; // as libuv names an errno it does not know
}

export interface BlockIoErrorDetails {
  /** Either sign; the error carries it negative. */
  errno: number;
  syscall: string;
  op?: string | undefined;
  offset?: number | undefined;
  length?: number | undefined;
  path?: string | undefined;
  message?: string | undefined;
}

// BlockIoError's message detail, for fromNative to rebuild it with a path.
const details = new WeakMap<BlockIoError, string | undefined>();

/**
 * An I/O request the kernel failed. `code` is the errno name; `errno` is
 * negative, as on Node's own system errors (`util.getSystemErrorName(err.errno)`).
 */
export class BlockIoError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly op: string | undefined;
  readonly offset: number | undefined;
  readonly length: number | undefined;
  readonly path: string | undefined;

  constructor(d: BlockIoErrorDetails) {
    const code = errnoName(d.errno);
    const where = [d.op ?? d.syscall, d.path !== undefined ? `'${d.path}'` : undefined,
      d.offset !== undefined ? `at offset ${d.offset}` : undefined,
      d.length !== undefined ? `length ${d.length}` : undefined].filter(Boolean).join(' ');
    super(d.message !== undefined ? `${code}: ${d.message}, ${where}` : `${code}: ${where}`);
    this.name = 'BlockIoError';
    this.code = code;
    this.errno = -Math.abs(d.errno);
    this.syscall = d.syscall;
    this.op = d.op;
    this.offset = d.offset;
    this.length = d.length;
    this.path = d.path;
    details.set(this, d.message);
  }
}

/** Misuse of the library (closed ring or device, read-only device, ...). */
export class BlockringError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'BlockringError';
    this.code = code;
  }
}

/** The one error every use of a closed device (file, block device or image) gets. */
export function deviceClosed(path: string): BlockringError {
  return new BlockringError('ERR_DEVICE_CLOSED', `device '${path}' is closed`);
}

/**
 * A request or batch given an aborted `signal`, as Node's own APIs reject:
 * `name` 'AbortError', `code` 'ABORT_ERR', the signal's reason as `cause`.
 */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** Checks a `signal` option: undefined, or an AbortSignal. */
export function checkSignal(v: unknown, name: string): AbortSignal | null {
  if (v === undefined) return null;
  if (!(v instanceof AbortSignal)) {
    const e = new TypeError(`${name} must be an AbortSignal`) as TypeError & { code: string };
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  return v;
}

export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}

/**
 * `done`, or an AbortError as soon as `signal` aborts: the work itself goes
 * on (its buffers stay in use) and whatever it settles with is discarded.
 */
export function rejectOnAbort<T>(done: Promise<T>, signal: AbortSignal | null): Promise<T> {
  if (!signal) return done;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    done.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The addon throws the user-facing classes itself (lib/native.ts hands it
 * BlockIoError and BlockringError at load); this only adds the path lib/
 * knows to a BlockIoError from a call that works on an fd.
 */
export function fromNative(e: unknown, path?: string): unknown {
  if (path === undefined || !(e instanceof BlockIoError) || e.path !== undefined) return e;
  return new BlockIoError({ errno: e.errno, syscall: e.syscall, op: e.op, offset: e.offset, length: e.length, path,
    message: details.get(e) });
}
