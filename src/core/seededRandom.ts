/**
 * mulberry32: seeded uniform numbers in (0, 1) (never 0, so a logarithm of one is finite), and Box-Muller normals
 * over them. One generator for everything that must repeat per seed: the random test and benchmark models, the
 * PCA sketch, the UMAP layout and the map's neighbour index.
 */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
}

/** 0..count-1 in a seeded Fisher-Yates order. */
export function seededPermutation(count: number, seed: number): number[] {
  const uniform = seededUniform(seed);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function seededNormal(seed: number): () => number {
  const uniform = seededUniform(seed);
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}
