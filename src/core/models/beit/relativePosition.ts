/**
 * BEiT's relative position index for a square grid of patches plus CLS, as the original code and HF
 * build it: patch pairs index a (2g-1)^2 table by their offset, and three extra rows hold
 * CLS->patch, patch->CLS and CLS->CLS.
 */
export function relativePositionIndex(grid: number): Int32Array {
  const tokens = grid * grid + 1;
  const span = 2 * grid - 1;
  const pairRows = span * span;
  const index = new Int32Array(tokens * tokens);
  for (let i = 1; i < tokens; i++) {
    const yi = Math.floor((i - 1) / grid);
    const xi = (i - 1) % grid;
    for (let j = 1; j < tokens; j++) {
      const yj = Math.floor((j - 1) / grid);
      const xj = (j - 1) % grid;
      index[i * tokens + j] = (yi - yj + grid - 1) * span + (xi - xj + grid - 1);
    }
  }
  for (let j = 1; j < tokens; j++) index[j] = pairRows;
  for (let i = 1; i < tokens; i++) index[i * tokens] = pairRows + 1;
  index[0] = pairRows + 2;
  return index;
}

export function relativePositionTableRows(grid: number): number {
  return (2 * grid - 1) ** 2 + 3;
}

/**
 * Gathers the per-head bias once at conversion time ([heads, tokens, tokens]) so the graph adds a
 * constant instead of gathering from the table on every run.
 */
export function gatherRelativePositionBias(table: Float32Array, heads: number, grid: number): Float32Array {
  const tokens = grid * grid + 1;
  const index = relativePositionIndex(grid);
  const bias = new Float32Array(heads * tokens * tokens);
  for (let h = 0; h < heads; h++) {
    const plane = h * tokens * tokens;
    for (let p = 0; p < tokens * tokens; p++) bias[plane + p] = table[index[p] * heads + h];
  }
  return bias;
}
