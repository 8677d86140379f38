// Options of the null engine (no I/O; latency and fault injection), checked
// here and handed to the addon in normalized form.
import os from 'node:os';

import type { NativeNullOptions } from './native';
import { OP } from './records';
import { checkOptions, checkUint, rangeError, typeError } from './validate';

export type NullFaultOp = keyof typeof OP;

export interface NullFault {
  /** Only attempts of this operation (readv/writev count as read/write). Default: any. */
  op?: NullFaultOp;
  /** Only attempts whose byte range overlaps [offsetStart, offsetEnd). A flush covers offset 0. */
  offsetStart?: number;
  offsetEnd?: number;
  /** Fail this many attempts, then stop. Default: every matching attempt. */
  count?: number;
  /** The error: an errno name ('EIO') or its positive number. */
  errno: string | number;
}

export interface NullEngineOptions {
  /**
   * Microseconds from submission to completion of each attempt: a fixed
   * value, or [min, max] for a uniform draw per attempt from `seed`.
   * Default 0 (complete at the next reap).
   */
  latencyUs?: number | readonly [number, number];
  /** Seed of the latency draws. Default 1. */
  seed?: number;
  /** Injected failures; the first matching fault with attempts left applies. */
  faults?: readonly NullFault[];
}

const MAX_LATENCY_US = 60_000_000;

function checkLatency(v: number, name: string): number {
  const us = checkUint(v, name);
  if (us > MAX_LATENCY_US) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be at most ${MAX_LATENCY_US}, got ${us}`);
  return us;
}

function checkErrno(v: unknown, name: string): number {
  if (typeof v === 'string') {
    const n = (os.constants.errno as Record<string, number | undefined>)[v];
    if (n === undefined) throw typeError('ERR_INVALID_ARG_VALUE', `${name} is not an errno name: ${v}`);
    return n;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 4095) return v;
  throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be an errno name or a positive errno number`);
}

/** Checks options.nullEngine; undefined becomes the defaults. */
export function normalizeNullEngine(v: unknown): NativeNullOptions {
  const o = checkOptions(v, 'options.nullEngine', ['latencyUs', 'seed', 'faults']);
  let min = 0;
  let max = 0;
  if (Array.isArray(o.latencyUs)) {
    if (o.latencyUs.length !== 2) throw typeError('ERR_INVALID_ARG_VALUE', 'options.nullEngine.latencyUs must be a number or [min, max]');
    min = checkLatency(o.latencyUs[0] as number, 'options.nullEngine.latencyUs[0]');
    max = checkLatency(o.latencyUs[1] as number, 'options.nullEngine.latencyUs[1]');
    if (min > max) throw rangeError('ERR_OUT_OF_RANGE', `options.nullEngine.latencyUs: min ${min} exceeds max ${max}`);
  } else if (o.latencyUs !== undefined) {
    min = max = checkLatency(o.latencyUs as number, 'options.nullEngine.latencyUs');
  }
  const seed = o.seed === undefined ? 1 : checkUint(o.seed, 'options.nullEngine.seed');
  const faults: NativeNullOptions['faults'] = [];
  if (o.faults !== undefined) {
    if (!Array.isArray(o.faults)) throw typeError('ERR_INVALID_ARG_TYPE', 'options.nullEngine.faults must be an array');
    o.faults.forEach((raw: unknown, i) => {
      const name = `options.nullEngine.faults[${i}]`;
      const f = checkOptions(raw, name, ['op', 'offsetStart', 'offsetEnd', 'count', 'errno']);
      let op = -1;
      if (f.op !== undefined) {
        if (typeof f.op !== 'string' || !Object.prototype.hasOwnProperty.call(OP, f.op)) {
          throw typeError('ERR_INVALID_ARG_VALUE', `${name}.op must be one of ${Object.keys(OP).join(', ')}`);
        }
        op = OP[f.op as NullFaultOp];
      }
      const offsetStart = f.offsetStart === undefined ? 0 : checkUint(f.offsetStart, `${name}.offsetStart`);
      const offsetEnd = f.offsetEnd === undefined ? Infinity : checkUint(f.offsetEnd, `${name}.offsetEnd`);
      if (offsetEnd <= offsetStart) throw rangeError('ERR_OUT_OF_RANGE', `${name}: offsetEnd must exceed offsetStart`);
      const count = f.count === undefined ? Infinity : checkUint(f.count, `${name}.count`);
      if (count < 1) throw rangeError('ERR_OUT_OF_RANGE', `${name}.count must be at least 1`);
      faults.push({ op, offsetStart, offsetEnd, count, errno: checkErrno(f.errno, `${name}.errno`) });
    });
  }
  return { latencyMinUs: min, latencyMaxUs: max, seed, faults };
}
