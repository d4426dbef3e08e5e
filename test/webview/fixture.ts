/**
 * Real numbers for the webview test: the tiny fixture model converted and run on a fixture image,
 * shaped into the protocol's messages the same way the extension shapes them. Replies to the
 * panel's requests (rollout, class heatmap, patch attention) are computed on demand from the kept
 * explanation, as the inference worker does.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { BeitModel, type Explanation } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { decodeImage } from '../../src/core/image';
import { patchLegend } from '../../src/core/overlay';
import { attentionFromPatch, attentionRollout, type HeadFusion } from '../../src/core/rollout';
import type { ExplanationDto, ExtensionToWebviewMessage } from '../../src/shared/protocol';

export const FIXTURE_MODEL = path.join(__dirname, '..', 'fixtures', 'beit-tiny');
export const FIXTURE_IMAGE = path.join(FIXTURE_MODEL, 'images', 'gradient_640x480.jpg');

type Reply<T extends ExtensionToWebviewMessage['type']> = Extract<ExtensionToWebviewMessage, { type: T }>;

export interface WebviewFixture {
  explanation: ExplanationDto;
  imageBytes: Buffer;
  rollout(headFusion: HeadFusion, discardRatio: number, requestId?: number): Reply<'rollout'>;
  classHeatmap(classIndex: number, requestId?: number): Reply<'classHeatmap'>;
  patchAttention(patch: number, layer: number, head: number | 'mean', requestId?: number): Reply<'patchAttention'>;
  dispose(): Promise<void>;
}

/** Softmax probability of each patch's argmax class, as the worker reports it in `patchScore`. */
function argmaxProbabilities(patchLogits: Float32Array, patches: number, numLabels: number): number[] {
  return Array.from({ length: patches }, (_, p) => {
    const row = patchLogits.subarray(p * numLabels, (p + 1) * numLabels);
    const max = Math.max(...row);
    return 1 / row.reduce((sum, v) => sum + Math.exp(v - max), 0);
  });
}

export async function loadWebviewFixture(options: { requestId?: number; image?: string; src?: string } = {}): Promise<WebviewFixture> {
  const requestId = options.requestId ?? 7;
  const file = options.image ?? FIXTURE_IMAGE;
  const dir = await mkdtemp(path.join(tmpdir(), 'beit-lens-webview-'));
  let model: BeitModel | undefined;
  try {
    await convertModel({ from: FIXTURE_MODEL, out: dir });
    model = await BeitModel.load(dir, { provider: 'cpu' });
    const imageBytes = await readFile(file);
    const rolloutSettings = { headFusion: 'mean' as HeadFusion, discardRatio: 0.9 };
    const [e, decoded]: [Explanation, { width: number; height: number }] = await Promise.all([model.explain(file, { topK: 5, rollout: rolloutSettings }), decodeImage(file)]);
    const labels = model.labels;
    const patches = e.grid * e.grid;
    const explanation: ExplanationDto = {
      requestId,
      image: { src: options.src ?? `data:image/jpeg;base64,${imageBytes.toString('base64')}`, name: path.basename(file), width: decoded.width, height: decoded.height },
      top: e.top,
      grid: e.grid,
      leadingTokens: e.leadingTokens,
      layers: e.layers,
      heads: e.heads,
      rollout: { ...rolloutSettings, map: Array.from(e.rollout) },
      patchArgmax: Array.from(e.patchArgmax),
      patchScore: argmaxProbabilities(e.patchLogits, patches, e.numLabels),
      legend: patchLegend(e.patchArgmax, labels),
      provider: model.provider,
    };
    const loaded = model;
    return {
      explanation,
      imageBytes,
      rollout: (headFusion, discardRatio, id = requestId) => ({
        type: 'rollout',
        requestId: id,
        headFusion,
        discardRatio,
        map: Array.from(attentionRollout(e.attentions, e, { headFusion, discardRatio })),
      }),
      classHeatmap: (classIndex, id = requestId) => ({ type: 'classHeatmap', requestId: id, classIndex, label: labels[classIndex], logits: Array.from(loaded.classHeatmap(e, classIndex)) }),
      patchAttention: (patch, layer, head, id = requestId) => ({ type: 'patchAttention', requestId: id, patch, layer, head, map: Array.from(attentionFromPatch(e.attentions, e, patch, layer, head)) }),
      dispose: async () => {
        await loaded.dispose();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await model?.dispose();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
