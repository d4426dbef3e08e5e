import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { BeitLensError } from '../core/errors';

/**
 * A file `--out` (explain's PNG, preprocess's tensor, scan's results) whose folder does not exist failed with a
 * raw ENOENT, and only after the model had run. Checked before any work, naming the folder. Folder outputs
 * (`convert`, `make-random`: `--out <dir>`) are created with their parents and need no check.
 */
export async function checkOutputFolder(file: string): Promise<void> {
  const folder = path.dirname(path.resolve(file));
  const stats = await stat(folder).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new BeitLensError('FILE_NOT_FOUND', `cannot write it: the folder ${folder} does not exist (create it first)`, file);
    if (e.code === 'ENOTDIR') throw new BeitLensError('FILE_NOT_FOUND', `cannot write it: a part of ${folder} is a file, not a folder`, file);
    throw e;
  });
  if (!stats.isDirectory()) throw new BeitLensError('FILE_NOT_FOUND', `cannot write it: ${folder} is a file, not a folder`, file);
}

/** Runs {@link checkOutputFolder} before any command whose `--out` names a file, whichever module registered it. */
export function checkOutputFoldersFirst(program: Command): void {
  program.hook('preAction', async (_program, command) => {
    const option = command.options.find((o) => o.long === '--out');
    const value: unknown = command.opts().out;
    if (!option || typeof value !== 'string' || /<dir>/.test(option.flags)) return;
    await checkOutputFolder(value);
  });
}
