export { Ring } from './ring';
export type { BatchRequest, EngineName, OpenOptions, RequestOp, RequestResult, RingOptions } from './ring';
export { BlockDevice } from './block-device';
export type { FlushOptions, TagOption, WriteOptions, WriteZeroesOptions } from './block-device';
export { RawQueue } from './raw-queue';
export type { NullEngineOptions, NullFault, NullFaultOp } from './null-engine';
export { BlockIoError, BlockringError, errnoName } from './errors';
export { FLAG, OP, TAG } from './records';
export type { Tag } from './validate';
