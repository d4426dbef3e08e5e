import { readdir, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundledBackends, ModelSession, ProviderAttempt, ProviderPreference, providerChoice, runtimeVersions } from './backend/onnxRuntime';
import { BeitLensError, errorMessage } from './errors';
import { imageLibraryVersions } from './image';
import { computePrecision, loadModelDirectory } from './modelDirectory';
import { describeIntegrity, ModelIntegrity, ModelVerifier } from './modelIntegrity';
import { cpuFloat16Note } from './onnx/float16';
import { terminalText } from './safeOutput';

export interface DoctorReport {
  ok: boolean;
  platform: string;
  node: string;
  versions: Record<string, string>;
  backends: { name: string; bundled: boolean }[];
  candidates: string[];
  skipped: { provider: string; reason: string }[];
  model?: { dir: string; ok: boolean; error?: string; files?: { name: string; bytes: number }[]; modelId?: string; numLabels?: number; missingLabelKeys?: number[]; provider?: string; attempts?: ProviderAttempt[]; compute?: 'fp32' | 'fp16'; note?: string; integrity?: DoctorIntegrity };
  cacheDir: string;
  cacheEntries: string[];
  text: string;
}

/** The model folder's files against its manifest: checked, or the file that differs and how. */
export type DoctorIntegrity = ModelIntegrity | { state: 'differs'; file?: string; error: string };

/** What `beit-lens doctor` and the extension's doctor command print: enough to debug a setup remotely. */
export async function runDoctor(options: { modelDir?: string; cacheDir: string; provider?: ProviderPreference; verifier?: ModelVerifier }): Promise<DoctorReport> {
  const lines: string[] = [];
  const versions = { ...runtimeVersions(), ...imageLibraryVersions() };
  const backends = bundledBackends();
  const { candidates, skipped } = providerChoice();
  const preference = options.provider ?? 'auto';
  lines.push(`platform: ${process.platform}-${process.arch} (${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB)`);
  lines.push(`node: ${process.version}`);
  for (const [k, v] of Object.entries(versions)) lines.push(`${k}: ${v}`);
  lines.push(`onnxruntime backends: ${backends.map((b) => `${b.name}${b.bundled ? '' : ' (not bundled)'}`).join(', ')}`);
  lines.push(`providers tried in order (auto): ${candidates.join(' > ')}`);
  for (const s of skipped) lines.push(`  ${s.provider} left out of auto: ${s.reason}`);
  if (preference !== 'auto') lines.push(`providers tried in order (--provider ${preference}): ${preference === 'cpu' ? 'cpu' : `${preference} > cpu`}`);

  let ok = true;
  let model: DoctorReport['model'];
  if (options.modelDir) {
    try {
      const dir = await loadModelDirectory(options.modelDir);
      const verifier = options.verifier ?? new ModelVerifier({ recordDir: path.join(options.cacheDir, 'verified-models') });
      let integrity: ModelIntegrity;
      try {
        integrity = await verifier.verify(dir);
      } catch (err) {
        if (err instanceof BeitLensError && err.code === 'INTEGRITY') {
          model = { dir: options.modelDir, ok: false, error: err.message, integrity: { state: 'differs', file: err.file, error: err.message } };
          lines.push(`model: ${err.message}`, `  integrity: differs: ${err.file ?? options.modelDir}`);
        }
        throw err;
      }
      const names = await readdir(options.modelDir);
      const files = await Promise.all(names.map(async (name) => ({ name, bytes: (await stat(path.join(options.modelDir!, name))).size })));
      const session = await ModelSession.create(dir.classifyModel, { provider: options.provider });
      await session.release();
      const compute = computePrecision(dir);
      const note = cpuFloat16Note(compute, session.provider);
      model = { dir: options.modelDir, ok: true, files, modelId: dir.modelId, numLabels: dir.config.numLabels, missingLabelKeys: dir.config.labels.missingKeys, provider: session.provider, attempts: session.attempts, compute, integrity, ...(note ? { note } : {}) };
      lines.push(`model: ${options.modelDir} (${dir.modelId}, ${dir.config.numLabels} labels${dir.config.labels.missingKeys.length ? `, label keys missing: ${dir.config.labels.missingKeys.join(', ')}` : ''})`);
      for (const f of files) lines.push(`  ${f.name}: ${f.bytes} bytes`);
      for (const a of session.attempts) lines.push(`  provider ${a.provider}: ${a.ok ? 'ok' : `failed: ${a.reason}`} (${a.millis} ms)${a.adapted ? `; ${a.adapted}` : ''}`);
      lines.push(`  running on: ${session.provider} (computes in ${compute})`);
      if (note) lines.push(`  ${note}`);
      lines.push(`  ${describeIntegrity(integrity)}`);
    } catch (err) {
      ok = false;
      if (!model?.integrity) {
        model = { dir: options.modelDir, ok: false, error: errorMessage(err) };
        lines.push(`model: ${errorMessage(err)}`);
      }
    }
  } else {
    lines.push('model: none given (--model DIR)');
  }
  const cacheEntries = await readdir(path.join(options.cacheDir, 'converted')).catch(() => [] as string[]);
  lines.push(`cache: ${options.cacheDir} (${cacheEntries.length ? `converted: ${cacheEntries.join(', ')}` : 'no converted models'})`);
  return { ok, platform: `${process.platform}-${process.arch}`, node: process.version, versions, backends, candidates, skipped, model, cacheDir: options.cacheDir, cacheEntries, text: lines.map(terminalText).join('\n') };
}
