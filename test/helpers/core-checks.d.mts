// Types for core-checks.mjs (plain JS so worker threads can run it).
import type { Ring, RingOptions } from '../../dist/lib/index.js';

export interface CheckContext {
  engine: string;
  requested: string;
  direct: boolean;
  readonly dir: string;
  readonly ring: Ring;
  makeRing(options: RingOptions): Ring;
}

export type Check = readonly [name: string, run: (ctx: CheckContext) => Promise<void>];

export const CORE_CHECKS: readonly Check[];
export const LIFECYCLE_CHECKS: readonly Check[];
export const SHARED_RING_OPTIONS: RingOptions;
