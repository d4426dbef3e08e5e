/**
 * One contender in the scan-cache lock race (reliability-scan.test.ts): `node --import tsx lockChild.ts`, driven
 * over IPC. `{ open, file, at }`: spin until the wall clock reaches `at` (so all contenders open within the same
 * millisecond), open the store and answer `{ writable }`; `{ close }`: close it and answer `{ closed }`.
 */
import { ResultStore } from '../../src/core/scan/resultStore';

let store: ResultStore | undefined;
process.on('message', (message: { open?: boolean; close?: boolean; file?: string; at?: number }) => {
  void (async () => {
    try {
      if (message.open) {
        while (Date.now() < message.at!) {
          // Busy-wait: a timer would add up to a millisecond of jitter per process.
        }
        store = await ResultStore.open(message.file!);
        process.send!({ writable: !store.isReadOnly });
      } else if (message.close) {
        await store?.close();
        store = undefined;
        process.send!({ closed: true });
      }
    } catch (err) {
      process.send!({ error: String(err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
