/** The model state in words: the status bar item and its tooltip, and the doctor report. No vscode import, so it is unit-tested. */
import { escapeMarkdown as md, providerName } from '../hover/hoverMarkdown';
import type { ModelState } from '../inference/inferenceClient';
import { noModelHint } from './modelActions';

/** `plain` for text that is shown as it is written (the doctor report's source), `markdown` for hovers and tooltips. */
export function describe(state: ModelState, format: 'markdown' | 'plain' = 'markdown'): { text: string; tooltip: string; error: boolean } {
  const esc = format === 'markdown' ? md : (text: string) => text.replace(/\r?\n/g, ' ');
  const bold = (text: string) => (format === 'markdown' ? `**${text}**` : text);
  switch (state.kind) {
    case 'starting':
      return { text: '$(loading~spin) BEiT', tooltip: 'BEiT Lens is starting', error: false };
    case 'loading':
      return { text: '$(loading~spin) BEiT: loading', tooltip: state.afterCrash ? 'Reloading the model after the inference worker stopped' : 'Loading the model', error: false };
    case 'ready':
      if (state.model.remote) {
        const { endpoints, modelName } = state.model.remote;
        return {
          text: '$(eye) BEiT: remote',
          tooltip: `${bold(esc(state.model.modelId))} ready on ${esc(endpoints.join(', '))} (model ${esc(modelName)}; beitLens.endpoint)\n\n${esc(state.model.modelDir)}`,
          error: false,
        };
      }
      return {
        text: `$(eye) BEiT: ${providerName(state.model.provider)}`,
        tooltip: `${bold(esc(state.model.modelId))} ready on ${providerName(state.model.provider)}\n\n${esc(state.model.modelDir)}`,
        error: false,
      };
    case 'noModel':
      return { text: '$(cloud-download) BEiT: no model', tooltip: `No model: ${esc(state.message)}. ${esc(noModelHint())}.`, error: false };
    case 'failed':
      return { text: '$(error) BEiT: failed', tooltip: `The model could not be loaded: ${esc(state.message)}`, error: true };
  }
}
