// Stands in for VS Code's webview API: records what the panel posts and stores, and any CSP
// violation, on window.__vscode for the test to read. Initial state comes from an init script.
'use strict';
(() => {
  const record = { posted: [], states: [], cspViolations: [], acquired: 0 };
  let state = window.__vscodeInitialState;
  window.__vscode = record;
  document.addEventListener('securitypolicyviolation', (e) => {
    record.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
  window.acquireVsCodeApi = () => {
    // VS Code throws on a second call; so does the stub, so the test catches the mistake.
    if (record.acquired++) throw new Error('An instance of the VS Code API has already been acquired');
    return Object.freeze({
      // VS Code structured-clones messages; a JSON round trip rejects the same non-data values.
      postMessage: (message) => {
        const copy = JSON.parse(JSON.stringify(message));
        record.posted.push(copy);
        // A test that plays the extension side exposes this (playwright's exposeFunction) to get each message.
        if (typeof window.__vscodeForward === 'function') window.__vscodeForward(copy);
        return true;
      },
      getState: () => state,
      setState: (next) => {
        state = JSON.parse(JSON.stringify(next));
        record.states.push(state);
        return next;
      },
    });
  };
})();
