import { Command, Option } from 'commander';
import { terminalText } from '../core/safeOutput';
import { wholeNumber } from './argumentParsers';
import { DEFAULT_MAX_BATCH, DEFAULT_QUEUE_DELAY_MICROSECONDS, DEFAULT_TRITON_MODEL_NAME, exportTritonRepository, TritonDtype, TritonInstanceKind } from '../core/serving/tritonRepository';

interface ExportFlags {
  model: string;
  out: string;
  name: string;
  maxBatch: number;
  instances: number;
  kind: TritonInstanceKind;
  dtype?: TritonDtype;
  tensorrtFp16?: boolean;
  queueDelay: number;
  force?: boolean;
}

export function registerTritonCommand(program: Command): void {
  program
    .command('export-triton')
    .description('write a Triton Inference Server model repository (onnxruntime backend) and a KServe InferenceService for a converted model')
    .requiredOption('--model <dir>', 'converted model folder (from `beit-lens convert` or `download`)')
    .requiredOption('--out <dir>', 'model repository folder to create (new or empty)')
    .option('--name <name>', 'Triton model name: letters, digits, _, - and .', DEFAULT_TRITON_MODEL_NAME)
    .option('--max-batch <n>', "Triton's max_batch_size (0: no batching)", wholeNumber('--max-batch', 0), DEFAULT_MAX_BATCH)
    .option('--instances <n>', 'model instances (instance_group count)', wholeNumber('--instances', 1), 1)
    .addOption(new Option('--kind <kind>', 'instance kind').choices(['gpu', 'cpu']).default('gpu'))
    .addOption(new Option('--dtype <dtype>', "precision (default: the folder's); fp16 from an fp32 folder runs the converter's fp16 pass").choices(['fp32', 'fp16']))
    .option('--tensorrt-fp16', 'with --kind gpu: run through the TensorRT execution accelerator in FP16')
    .option('--queue-delay <us>', "dynamic batcher's max_queue_delay_microseconds", wholeNumber('--queue-delay', 0), DEFAULT_QUEUE_DELAY_MICROSECONDS)
    .option('--force', "write into a folder that is not empty (replaces the model NAME and the repository's README.md and manifest)")
    .action(async (o: ExportFlags) => {
      const controller = new AbortController();
      const abort = () => controller.abort();
      process.once('SIGINT', abort);
      try {
        const result = await exportTritonRepository({
          model: o.model,
          out: o.out,
          name: o.name,
          maxBatch: o.maxBatch,
          instances: o.instances,
          kind: o.kind,
          dtype: o.dtype,
          tensorrtFp16: o.tensorrtFp16,
          queueDelayMicroseconds: o.queueDelay,
          force: o.force,
          signal: controller.signal,
          onLog: (m) => process.stderr.write(terminalText(m) + '\n'),
        });
        process.stdout.write(terminalText(`exported ${o.model} -> ${result.repository} as model ${result.modelName} (${result.dtype}, weights ${result.weights}): ${result.files.join(', ')}`) + '\n');
        process.stdout.write(terminalText(`start Triton: see ${result.repository}/README.md`) + '\n');
      } finally {
        process.removeListener('SIGINT', abort);
      }
    });
}
