/**
 * Memory measurements for the reliability tests: forced garbage collection without `--expose-gc` on the
 * command line (the test runner starts each file itself), the RSS of this process or a child, and the peak
 * RSS while an async operation runs (sampled, since libvips and onnxruntime allocate on their own threads
 * while the event loop is free).
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';

setFlagsFromString('--expose-gc');
// The flag only takes effect for contexts created after it is set, hence a fresh context.
const gc = runInNewContext('gc') as () => void;

export const MB = 1024 * 1024;

/** Runs full collections until the heap stops shrinking, so "after" numbers are not just garbage not yet collected. */
export async function collectGarbage(): Promise<void> {
  let previous = Infinity;
  for (let i = 0; i < 5; i++) {
    // Let finalizers and pending native frees (sharp buffers, closed handles) run between passes.
    await sleep(10);
    gc();
    const used = process.memoryUsage().heapUsed;
    if (used >= previous - 64 * 1024) break;
    previous = used;
  }
}

export interface MemorySnapshot {
  rss: number;
  heapUsed: number;
  external: number;
}

export async function snapshot(): Promise<MemorySnapshot> {
  await collectGarbage();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

/** Resident set size of another process (the inference worker), from /proc; Linux only. */
export function rssOfProcess(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb[1]) * 1024;
}

export interface Measured<T> {
  ok: boolean;
  value?: T;
  error?: unknown;
  ms: number;
  /** Highest RSS seen while the operation ran, minus the RSS just before it. */
  peakRssGrowth: number;
}

/** Runs `operation`, timing it and sampling this process's RSS every 2 ms; never throws. */
export async function measure<T>(operation: () => Promise<T>): Promise<Measured<T>> {
  const before = process.memoryUsage.rss();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 2);
  const started = performance.now();
  try {
    const value = await operation();
    return { ok: true, value, ms: performance.now() - started, peakRssGrowth: Math.max(peak, process.memoryUsage.rss()) - before };
  } catch (error) {
    return { ok: false, error, ms: performance.now() - started, peakRssGrowth: Math.max(peak, process.memoryUsage.rss()) - before };
  } finally {
    clearInterval(sampler);
  }
}

export function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}
