/** One printed benchmark figure: ours against a peer measured in the same run. Shared by every benchmark module. */
export interface BenchRow {
  figure: string;
  ours: number;
  peer: number;
  unit: string;
  peerName: string;
  /** ours / peer for times (lower is better); peer / ours is not used, to keep one convention. */
  ratio: number;
  target?: string;
  met?: boolean;
}

/** Medians after warm-up, shared by the benchmark modules. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export async function timeIt(fn: () => Promise<unknown>, reps: number, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** Medians of two workloads timed in alternation, so drift in the machine's speed during a run hits both alike. */
export async function timeAlternating(a: () => Promise<unknown>, b: () => Promise<unknown>, reps: number, warmup = 2): Promise<[number, number]> {
  for (let i = 0; i < warmup; i++) {
    await a();
    await b();
  }
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < reps; i++) {
    let t = performance.now();
    await a();
    ta.push(performance.now() - t);
    t = performance.now();
    await b();
    tb.push(performance.now() - t);
  }
  return [median(ta), median(tb)];
}
