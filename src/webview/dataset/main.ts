import type { DatasetViewMessage } from '../../shared/protocol';
import { DatasetView, type DatasetVsCodeApi } from './datasetView';
import { buildDom } from './dom';
import { restoreQuery } from './messages';

/**
 * Boots the dataset view. The host's HTML provides only `<body data-folder="...">`, the stylesheet and
 * this script; the folder and the query are kept in the webview state, so VS Code's serializer can reopen
 * the view on the same dataset after a reload, with the same filters.
 */
function main(): void {
  // acquireVsCodeApi is typed for the explanation panel's messages (src/webview/vscodeApi.ts).
  const api = acquireVsCodeApi() as unknown as DatasetVsCodeApi;
  const stored = api.getState() as { folder?: unknown; query?: unknown } | undefined;
  const folder = document.body.dataset.folder || (typeof stored?.folder === 'string' ? stored.folder : '');
  const query = restoreQuery(stored?.folder === folder ? stored?.query : undefined);
  api.setState({ folder, query });
  const view = new DatasetView(buildDom(document.body), api, folder, query);
  window.addEventListener('message', (event: MessageEvent<unknown>) => {
    try {
      view.handleMessage(event.data);
    } catch (err) {
      // One bad message must not leave the view without a listener for the next one.
      console.error('BEiT Lens: failed to handle a message', err);
    }
  });
  api.postMessage({ type: 'ready' } satisfies DatasetViewMessage);
}

main();
