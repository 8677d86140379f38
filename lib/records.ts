// Layout of the shared submission / completion records. Mirrors
// native/binding/records.h; change both together.

export const SQ_STRIDE = 8;
export const SQ_ID = 0;
export const SQ_OPWORD = 1; // op | tag << 8 | flags << 16
export const SQ_DEVICE = 2;
export const SQ_BUFFER = 3;
export const SQ_BUFCOUNT = 4;
export const SQ_LENGTH = 5;
export const SQ_OFFSET = 6;
export const SQ_BUFOFFSET = 7;

export const CQ_STRIDE = 5;
/** Raw completion records are the first four fields (RawQueue's documented layout). */
export const RAW_CQ_STRIDE = 4;
export const CQ_ID = 0;
export const CQ_RESULT = 1;
export const CQ_ISSUED = 2;
export const CQ_COMPLETED = 3;
/** Index into native.syscallNames: what the engine issued for the last attempt. */
export const CQ_SYSCALL = 4;

/** Operation codes of the raw interface. */
export const OP = Object.freeze({ read: 0, write: 1, flush: 2, discard: 3, writeZeroes: 4 } as const);
/** SCSI task attributes of the raw interface. */
export const TAG = Object.freeze({ simple: 0, ordered: 1, head: 2 } as const);
/** Request flags of the raw interface. */
export const FLAG = Object.freeze({ fua: 1, metadata: 2, unmap: 4 } as const);

export function opWord(op: number, tag: number, flags: number): number {
  return op | (tag << 8) | (flags << 16);
}
