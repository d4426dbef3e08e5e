/**
 * What every worker thread of ours needs: starting from a .ts source under tsx as well as from the bundle, and a
 * lower scheduling priority for background work (scan preprocessing, map projections) so inference keeps the cores.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import * as path from 'node:path';

/**
 * A .ts worker (tests, `node --import tsx`) needs tsx's require hook: Node 20 workers do not inherit the
 * parent's `--import tsx` loader, and the CommonJS hook is what these sources compile to. A bundled .js worker
 * inherits the parent's flags as Node does by default.
 */
export function sourceWorkerExecArgv(script: string): string[] | undefined {
  return script.endsWith('.ts') ? ['--require', 'tsx/cjs'] : undefined;
}

/**
 * The environment of a .ts worker: NODE_OPTIONS without `--import tsx`. Workers read NODE_OPTIONS too, and in
 * Node 20 tsx's ESM hooks do not work inside a worker thread ("Unknown file extension .ts"), so a process
 * started with NODE_OPTIONS="--import tsx" (the extension tests' inference worker) could not start its pool.
 */
export function sourceWorkerEnv(script: string): NodeJS.ProcessEnv | undefined {
  const options = process.env.NODE_OPTIONS;
  if (!script.endsWith('.ts') || !options?.includes('tsx')) return undefined;
  return { ...process.env, NODE_OPTIONS: options.replace(/--import[= ](tsx|"tsx"|'tsx')(?=\s|$)/g, '').trim() };
}

/**
 * Lowers this thread's scheduling priority. Only on Linux, where a nice value belongs to a thread: elsewhere
 * setPriority re-prioritises the whole process, model included. Best effort: without it preprocessing merely
 * competes with inference for the cores.
 */
export function lowerThreadPriority(niceness: number, platform: NodeJS.Platform = process.platform): boolean {
  if (platform !== 'linux' || !(niceness > 0)) return false;
  try {
    const tid = Number(path.basename(readlinkSync('/proc/thread-self')));
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, Math.min(19, Math.round(niceness)));
    return true;
  } catch {
    return false;
  }
}
