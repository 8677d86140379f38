// Rings holding requests made in this tick and not yet submitted (they go
// to the kernel in one batch at the end of the tick). MappedRegion.unmap()
// submits them first: from submission on a request holds the pages it uses,
// so a read issued before unmap() still lands in the region.
const pending = new Set<() => void>();

export function queueSubmit(submit: () => void): void {
  pending.add(submit);
}

export function submitted(submit: () => void): void {
  pending.delete(submit);
}

export function submitQueuedRequests(): void {
  for (const submit of [...pending]) submit();
}
