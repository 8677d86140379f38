// Rings holding requests made in this tick and not yet submitted (they go
// to the kernel in one batch at the end of the tick). MappedRegion.unmap()
// submits them first: from submission on a request holds the pages it uses,
// so a read issued before unmap() still lands in the region.
const flushes = new Set<() => void>();

export function queueFlush(flush: () => void): void {
  flushes.add(flush);
}

export function flushed(flush: () => void): void {
  flushes.delete(flush);
}

export function submitQueuedRequests(): void {
  for (const flush of [...flushes]) flush();
}
