/**
 * Entry point @vscode/test-electron loads inside the extension host: runs every test registered by
 * the suite files in order and fails the run if any fails. (A dozen sequential tests do not need
 * a test framework in the extension host.)
 */
import { registeredTests } from './harness';
import './extension.test';

const TEST_TIMEOUT_MS = 60_000;

export async function run(): Promise<void> {
  let failed = 0;
  for (const t of registeredTests) {
    const started = Date.now();
    try {
      await Promise.race([t.fn(), new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS))]);
      console.log(`ok - ${t.name} (${Date.now() - started} ms)`);
    } catch (err) {
      failed++;
      console.error(`not ok - ${t.name}\n${(err as Error).stack ?? String(err)}`);
    }
  }
  console.log(`${registeredTests.length - failed} of ${registeredTests.length} passed`);
  if (failed) throw new Error(`${failed} VS Code integration test(s) failed`);
}
