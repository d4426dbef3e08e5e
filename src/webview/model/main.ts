import type { ModelViewMessage } from '../../shared/protocol';
import { ModelView } from './modelView';

/** Boots the Model view: the host's HTML provides an empty body, the stylesheet and this script. */
function main(): void {
  // acquireVsCodeApi is typed for the explanation panel's messages (src/webview/vscodeApi.ts).
  const api = acquireVsCodeApi() as unknown as { postMessage(message: ModelViewMessage): void };
  const view = new ModelView(document.body);
  window.addEventListener('message', (event: MessageEvent<unknown>) => {
    try {
      view.handleMessage(event.data);
    } catch (err) {
      console.error('BEiT Lens: failed to handle a message', err);
    }
  });
  api.postMessage({ type: 'ready' });
}

main();
