import { ExplanationPanel } from './panel';
import { restoreState } from './state';
import { buildView } from './view';

/**
 * Boots the explanation panel. The host's HTML provides only `<body data-image-path="...">`, the
 * stylesheet and this script; the image path is stored with the panel state so VS Code's serializer
 * can reopen the panel for the same image after a reload.
 */
function main(): void {
  const api = acquireVsCodeApi();
  const state = restoreState(api.getState(), document.body.dataset.imagePath);
  api.setState(state);
  const panel = new ExplanationPanel(buildView(document.body), api, state);
  window.addEventListener('message', (event: MessageEvent<unknown>) => {
    try {
      panel.handleMessage(event.data);
    } catch (err) {
      // One bad message must not leave the panel without a listener for the next one.
      console.error('BEiT Lens: failed to handle a message', err);
    }
  });
  api.postMessage({ type: 'ready' });
}

main();
