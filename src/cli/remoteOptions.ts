import { Command, Option } from 'commander';
import { BeitLensError } from '../core/errors';
import { ENDPOINT_TOKEN_ENV, RemoteSessionFactory, type EndpointStats } from '../core/remote/v2Client';

export interface RemoteFlags {
  /** Empty: run the graphs locally. */
  endpoint: string[];
  remoteModel?: string;
  ca?: string;
}

/** --endpoint (repeatable), --remote-model and --ca, the same on every command that runs the model. */
export function addRemoteOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--endpoint <url>', `Open Inference Protocol (KServe v2) server to run the model on; repeat to spread batches over several (token: $${ENDPOINT_TOKEN_ENV})`)
        .argParser((value: string, previous: string[]) => [...previous, value])
        .default([]),
    )
    .option('--remote-model <name>', "the model's name on --endpoint")
    .option('--ca <file>', 'PEM CA certificate that https endpoints are checked against, instead of the system CAs');
}

/** The remote session factory the flags ask for, or undefined for a local session. */
export function remoteSessions(flags: RemoteFlags): RemoteSessionFactory | undefined {
  if ((flags.endpoint.length === 0) !== (flags.remoteModel === undefined)) throw new BeitLensError('CONFIG_INVALID', '--endpoint and --remote-model go together: the server URL and the model name on it');
  if (flags.ca !== undefined && flags.endpoint.length === 0) throw new BeitLensError('CONFIG_INVALID', '--ca is for https endpoints: give --endpoint too');
  if (flags.endpoint.length === 0) return undefined;
  return new RemoteSessionFactory({ endpoint: flags.endpoint, modelName: flags.remoteModel!, ...(flags.ca !== undefined ? { caFile: flags.ca } : {}) });
}

/** One summary line per endpoint: images answered, requests, throughput over the run, and a failure if any. */
export function endpointSummaryLines(stats: readonly EndpointStats[], seconds: number): string[] {
  return stats.map((s) => {
    const rate = seconds > 0 ? s.images / seconds : 0;
    return `endpoint ${s.endpoint}: ${s.images} images in ${s.requests} requests (${rate.toFixed(1)} images/s)${s.failure ? `; failed, its batches went to the others: ${s.failure}` : ''}`;
  });
}
