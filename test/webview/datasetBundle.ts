/**
 * Builds the webview bundles (webpack.config.js's "webview" configuration, production mode) into `outDir`
 * and returns the dataset view's bundle, for the browser tests that load it.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import webpack, { type Configuration } from 'webpack';

const ROOT = path.join(__dirname, '..', '..');

export async function buildDatasetBundle(outDir: string): Promise<string> {
  const configs = require(path.join(ROOT, 'webpack.config.js')) as Configuration[];
  const config = configs.find((c) => c.name === 'webview');
  assert.ok(config, 'webpack.config.js has no "webview" configuration');
  await new Promise<void>((resolve, reject) =>
    webpack({ ...config, mode: 'production', output: { ...config.output, path: outDir } }, (err, stats) => {
      if (err) reject(err);
      else if (stats?.hasErrors()) reject(new Error(stats.toString('errors-only')));
      else resolve();
    }),
  );
  return path.join(outDir, 'datasetView.js');
}
