/**
 * What `train-head` and `label-issues` (and, later, the editor's worker) do before any fitting: read the labelled
 * dataset, embed it through the scan (cached embeddings reused), and turn what went wrong into warnings: images that
 * failed (left out, never fatal), the same content in two classes. A class left with no embedded image is refused
 * by name: a head cannot learn it.
 */
import { BeitLensError } from '../errors';
import { displayPath } from '../scan/fileNames';
import { collectLabelledEmbeddings, type FeatureScanOptions, type LabelledFeatures } from './features';
import { contentInSeveralClasses, describeContentDuplicate, readLabelledDataset, type LabelledDataset, type ReadDatasetOptions } from './labelledDataset';

export interface ProbeData {
  readonly dataset: LabelledDataset;
  readonly features: LabelledFeatures;
  /** Dataset warnings, failed images and content duplicates, one line each. */
  readonly warnings: string[];
}

export interface ProbeDataOptions extends FeatureScanOptions {
  /** A `path,label` CSV that overrides the folder layout. */
  readonly labelsFile?: string;
  readonly exclude?: ReadDatasetOptions['exclude'];
  readonly gitignore?: ReadDatasetOptions['gitignore'];
  /** Each warning as it is found, so the ones that explain a refusal are seen before it. */
  readonly onDatasetWarning?: (line: string) => void;
}

export async function loadProbeData(dir: string, options: ProbeDataOptions): Promise<ProbeData> {
  const dataset = await readLabelledDataset(dir, { labelsFile: options.labelsFile, exclude: options.exclude, gitignore: options.gitignore, signal: options.signal });
  const features = await collectLabelledEmbeddings(dataset, options.labelsFile ? undefined : dir, options);
  const warnings = [...dataset.warnings];
  for (const f of features.failed) warnings.push(`${displayPath(f.image)}: skipped: ${f.error}`);
  const duplicates = contentInSeveralClasses(features.images.map((image, i) => ({ image, label: features.labels[i], hash: features.hashes[i] })));
  for (const d of duplicates) warnings.push(describeContentDuplicate(d, dataset.classes));
  for (const w of warnings) options.onDatasetWarning?.(w);
  const counts = new Array<number>(dataset.classes.length).fill(0);
  for (const y of features.labels) counts[y]++;
  const empty = dataset.classes.filter((_, c) => counts[c] === 0);
  if (empty.length > 0) {
    throw new BeitLensError(
      'CONFIG_INVALID',
      `no image of class${empty.length > 1 ? 'es' : ''} ${empty.map((n) => JSON.stringify(n)).join(', ')} could be embedded (see the skipped images above); fix or remove ${empty.length > 1 ? 'them' : 'it'}`,
      options.labelsFile ?? dir,
    );
  }
  return { dataset, features, warnings };
}
