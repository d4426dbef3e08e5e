/**
 * Remote session rows (Open Inference Protocol, KServe v2):
 *
 *   protocol overhead: classifyFiles through a loopback v2 server running the same graph on this machine, with
 *   Triton's binary tensors and with JSON tensors, against the local session, timed alternately;
 *   fan-out: a scan over two endpoints against one, each endpoint answering one request at a time after a
 *   fixed wait per batch (standing in for a remote GPU), so the figure is the dispatch, not this machine's cores.
 *
 * The server is the conformance tests' v2 server (test/helpers/v2Server.ts), in this process.
 * `node --import tsx bench/remote.ts` runs these rows alone on the tiny fixture model (BENCH_REMOTE_MODEL=DIR: the
 * overhead rows on that converted folder; BENCH_REPS: repetitions).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { BeitModel } from '../src/core/beitModel';
import { convertModel } from '../src/core/convert';
import { RemoteSessionFactory } from '../src/core/remote/v2Client';
import { PreprocessPool } from '../src/core/scan/preprocessPool';
import { writeSyntheticDataset } from '../src/core/scan/scanBench';
import { scanDataset } from '../src/core/scan/scanner';
import { startV2Server } from '../test/helpers/v2Server';
import { type BenchRow, timeAlternating } from './timing';


const MODEL_NAME = 'beit';
const FAN_OUT_WAIT_MS = 150;
const TINY_FIXTURE = path.resolve(__dirname, '..', 'test', 'fixtures', 'beit-tiny');

export interface RemoteBenchOptions {
  /** Converted folder for the overhead rows (the fan-out rows always use the tiny fixture: see above). */
  modelDir: string;
  modelLabel: string;
  images: readonly string[];
  reps: number;
  log?: (message: string) => void;
}

export async function remoteRows(options: RemoteBenchOptions): Promise<BenchRow[]> {
  const log = options.log ?? (() => undefined);
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'beit-bench-remote-'));
  try {
    log(`remote protocol overhead (${options.modelLabel})`);
    const rows = await overheadRows(options);
    log('remote fan-out over two endpoints');
    const tiny = path.join(scratch, 'tiny');
    await convertModel({ from: TINY_FIXTURE, out: tiny });
    rows.push(await fanOutRow(tiny, path.join(scratch, 'dataset'), options.reps));
    return rows;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function overheadRows({ modelDir, modelLabel, images, reps }: RemoteBenchOptions): Promise<BenchRow[]> {
  const local = await BeitModel.load(modelDir, { provider: 'cpu', verifier: false });
  const server = await startV2Server({ modelName: MODEL_NAME, modelFile: local.directory.classifyModel, binary: true });
  const binary = await BeitModel.load(modelDir, { verifier: false, sessions: new RemoteSessionFactory({ endpoint: server.url, modelName: MODEL_NAME }) });
  const json = await BeitModel.load(modelDir, { verifier: false, sessions: new RemoteSessionFactory({ endpoint: server.url, modelName: MODEL_NAME, tensors: 'json' }) });
  try {
    const classify = (model: BeitModel) => () => model.classifyFiles(images, { topK: 5, batchSize: 8 });
    const perSecond = (ms: number) => images.length / (ms / 1000);
    const [binaryMs, localMs] = await timeAlternating(classify(binary), classify(local), reps);
    const [jsonMs, localJsonMs] = await timeAlternating(classify(json), classify(local), reps);
    const figure = (tensors: string) => `remote classification throughput over loopback, ${tensors}, ${images.length} images batch 8, ${modelLabel} (vs the local session)`;
    return [
      { figure: figure("Triton's binary tensors"), ours: perSecond(binaryMs), peer: perSecond(localMs), unit: 'images/s', peerName: 'local session', ratio: localMs / binaryMs, target: '>= 0.9', met: localMs / binaryMs >= 0.9 },
      { figure: figure('JSON tensors'), ours: perSecond(jsonMs), peer: perSecond(localJsonMs), unit: 'images/s', peerName: 'local session', ratio: localJsonMs / jsonMs },
    ];
  } finally {
    await binary.dispose();
    await json.dispose();
    await local.dispose();
    await server.close();
  }
}

async function fanOutRow(modelDir: string, datasetDir: string, reps: number): Promise<BenchRow> {
  // 12 batches: the scan's start (walk, the first batch's preprocessing) is a small part of either run.
  const files = await writeSyntheticDataset(datasetDir, { classes: ['a', 'b'], perClass: 48 });
  const local = await BeitModel.load(modelDir, { provider: 'cpu', verifier: false });
  const serve = () => startV2Server({ modelName: MODEL_NAME, modelFile: local.directory.classifyModel, binary: true, serial: true, inferDelayMs: FAN_OUT_WAIT_MS });
  const servers = [await serve(), await serve()];
  const two = await BeitModel.load(modelDir, { verifier: false, sessions: new RemoteSessionFactory({ endpoint: servers.map((s) => s.url), modelName: MODEL_NAME }) });
  const one = await BeitModel.load(modelDir, { verifier: false, sessions: new RemoteSessionFactory({ endpoint: servers[0].url, modelName: MODEL_NAME }) });
  // One pool for every scan: worker start-up is not part of the dispatch being measured.
  const pool = new PreprocessPool({ preprocessor: local.directory.preprocessor, options: {}, workers: 2 });
  try {
    const scan = (model: BeitModel, endpoints: number) => async () => {
      const summary = await scanDataset({ roots: [datasetDir], model, batchSize: 8, batchesInFlight: endpoints, embeddings: false, pool, countFirst: false });
      if (summary.classified !== files.length) throw new Error(`fan-out scan classified ${summary.classified} of ${files.length} images`);
    };
    const [twoMs, oneMs] = await timeAlternating(scan(two, 2), scan(one, 1), Math.max(3, Math.ceil(reps / 2)), 1);
    const perSecond = (ms: number) => files.length / (ms / 1000);
    return {
      figure: `scan throughput, two endpoints each answering one request at a time after ${FAN_OUT_WAIT_MS} ms per batch, ${files.length} images batch 8 (vs one endpoint)`,
      ours: perSecond(twoMs),
      peer: perSecond(oneMs),
      unit: 'images/s',
      peerName: 'one endpoint',
      ratio: oneMs / twoMs,
      target: '>= 1.8',
      met: oneMs / twoMs >= 1.8,
    };
  } finally {
    await pool.close();
    await two.dispose();
    await one.dispose();
    await local.dispose();
    await Promise.all(servers.map((s) => s.close()));
  }
}

if (require.main === module) {
  (async () => {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'beit-bench-remote-main-'));
    try {
      const tiny = path.join(scratch, 'tiny');
      await convertModel({ from: TINY_FIXTURE, out: tiny });
      const fixtureImages = ['gradient_640x480.jpg', 'exif_orientation6_320x240.jpg', 'alpha_300x200.png', 'gray_256x256.png'].map((f) => path.join(TINY_FIXTURE, 'images', f));
      const images = Array.from({ length: 32 }, (_, i) => fixtureImages[i % fixtureImages.length]);
      const modelDir = process.env.BENCH_REMOTE_MODEL ?? tiny;
      const modelLabel = process.env.BENCH_REMOTE_MODEL ? path.basename(modelDir) : 'tiny fixture model';
      const rows = await remoteRows({ modelDir, modelLabel, images, reps: Number(process.env.BENCH_REPS ?? 5), log: (m) => process.stderr.write(`[bench] ${m}\n`) });
      const machine = `${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} cores, ${process.platform}-${process.arch}, Node ${process.version}`;
      const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
      process.stdout.write(
        [
          `remote benchmark — ${machine}`,
          '',
          '| figure | ours | peer | ratio (ours/peer) | target |',
          '| --- | ---: | ---: | ---: | --- |',
          ...rows.map((r) => `| ${r.figure} | ${fmt(r.ours)} ${r.unit} | ${fmt(r.peer)} ${r.unit} (${r.peerName}) | ${r.ratio.toFixed(2)}x | ${r.target ? `${r.target} ${r.met ? 'met' : 'NOT met'}` : ''} |`),
        ].join('\n') + '\n',
      );
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  })().catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
