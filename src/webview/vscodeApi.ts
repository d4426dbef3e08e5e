import type { WebviewToExtensionMessage } from '../shared/protocol';
import type { PersistedState } from './state';

/**
 * The API VS Code injects into webviews, declared here (not in state.ts) so that Node tests
 * importing the DOM-free modules do not pick up this browser-only global.
 */
export interface VsCodeApi {
  postMessage(message: WebviewToExtensionMessage): void;
  getState(): unknown;
  setState(state: PersistedState): void;
}

declare global {
  function acquireVsCodeApi(): VsCodeApi;
}
