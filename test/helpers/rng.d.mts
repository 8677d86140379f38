/** Deterministic PRNG (mulberry32): uniform numbers in [0, 1) from a seed. */
export function rng(seed: number): () => number;
