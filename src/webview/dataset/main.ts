import type { DatasetViewMessage } from '../../shared/protocol';
import { DatasetView, type DatasetVsCodeApi } from './datasetView';
import { buildDom } from './dom';
import { restoreGallerySize, restoreLayout, restoreQuery, restoreThumbnailSize } from './messages';

/**
 * Boots the dataset view. The host's HTML provides only `<body data-folder="...">`, the stylesheet and
 * this script; the folder and the query are kept in the webview state, so VS Code's serializer can reopen
 * the view on the same dataset after a reload, with the same filters.
 */
function main(): void {
  // acquireVsCodeApi is typed for the explanation panel's messages (src/webview/vscodeApi.ts).
  const api = acquireVsCodeApi() as unknown as DatasetVsCodeApi;
  const stored = api.getState() as { folder?: unknown; query?: unknown; thumbnailSize?: unknown; layout?: unknown; gallerySize?: unknown } | undefined;
  const folder = document.body.dataset.folder || (typeof stored?.folder === 'string' ? stored.folder : '');
  const query = restoreQuery(stored?.folder === folder ? stored?.query : undefined);
  // The thumbnail size, layout and gallery size are preferences of the view, kept even when the folder changes.
  const thumbnailSize = restoreThumbnailSize(stored?.thumbnailSize);
  const layout = restoreLayout(stored?.layout);
  const gallerySize = restoreGallerySize(stored?.gallerySize);
  api.setState({ folder, query, thumbnailSize, layout, gallerySize });
  const view = new DatasetView(buildDom(document.body), api, folder, query, thumbnailSize, { layout, gallerySize });
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
