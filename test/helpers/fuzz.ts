/**
 * Shared settings for the property-based fuzz targets: a fixed seed, so a CI failure reproduces, and a bounded
 * number of cases per target in CI that `FUZZ_RUNS` raises for longer runs on request (`npm run fuzz`).
 * Each target counts the cases it actually ran and reports them as a test diagnostic line
 * ("fuzz <target>: N cases, seed S"), which the README's Reliability section quotes.
 */
import type { TestContext } from 'node:test';

/** Override with FUZZ_SEED to explore other inputs; the default keeps CI deterministic. */
export const FUZZ_SEED = parsePositive(process.env.FUZZ_SEED) ?? 20_260_127;

function parsePositive(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Cases per target: FUZZ_RUNS when set, else the CI default of that target. */
export function fuzzRuns(ciDefault: number): number {
  return parsePositive(process.env.FUZZ_RUNS) ?? ciDefault;
}

/** fast-check parameters for a target whose CI default is `ciDefault` cases. */
export function fuzzParameters(ciDefault: number): { numRuns: number; seed: number } {
  return { numRuns: fuzzRuns(ciDefault), seed: FUZZ_SEED };
}

/** A test timeout that grows with FUZZ_RUNS, from the one that fits the CI default. */
export function fuzzTimeout(ciDefault: number, ciTimeoutMs: number): number {
  return Math.ceil((ciTimeoutMs * Math.max(fuzzRuns(ciDefault), ciDefault)) / ciDefault);
}

/** Counts the cases a property really ran (fast-check stops early on a failure) and reports them. */
export class FuzzCounter {
  count = 0;
  constructor(
    readonly target: string,
    readonly detail?: string,
  ) {}
  tick(): void {
    this.count++;
  }
  report(t: TestContext): void {
    t.diagnostic(`fuzz ${this.target}: ${this.count} cases${this.detail ? ` (${this.detail})` : ''}, seed ${FUZZ_SEED}`);
  }
}
