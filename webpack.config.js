// @ts-check
'use strict';
const path = require('node:path');
const webpack = require('webpack');

/** Native modules stay outside the bundle: they ship as node_modules in the VSIX (see .vscodeignore). */
const nativeExternals = { 'onnxruntime-node': 'commonjs onnxruntime-node', sharp: 'commonjs sharp', usearch: 'commonjs usearch' };

/** @type {(tsconfig: string) => import("webpack").RuleSetRule} */
const tsRule = (tsconfig) => ({
  test: /\.ts$/,
  exclude: /node_modules/,
  use: [{ loader: 'ts-loader', options: { configFile: path.resolve(__dirname, tsconfig), transpileOnly: true } }],
});

/** @type {import('webpack').Configuration} */
const nodeBase = {
  target: 'node20',
  node: { __dirname: false, __filename: false },
  resolve: { extensions: ['.ts', '.js'] },
  module: { rules: [tsRule('tsconfig.json')] },
  devtool: 'nosources-source-map',
  infrastructureLogging: { level: 'warn' },
  performance: { hints: false },
  // protobufjs probes for optional Node modules with a dynamic require; harmless in a bundle.
  ignoreWarnings: [{ module: /@protobufjs[\\/]inquire/ }],
};

/** @type {import('webpack').Configuration[]} */
module.exports = [
  {
    ...nodeBase,
    name: 'extension',
    // The inference worker runs map projections on a thread that loads dist/projectionWorker.js next to it.
    entry: { extension: './src/extension/extension.ts', inferenceWorker: './src/extension/worker/inferenceWorker.ts', projectionWorker: './src/core/projection/projectionWorker.ts' },
    output: { path: path.resolve(__dirname, 'dist'), filename: '[name].js', libraryTarget: 'commonjs2' },
    externals: { vscode: 'commonjs vscode', ...nativeExternals },
  },
  {
    ...nodeBase,
    name: 'cli',
    // The scan engine's worker threads load dist/scanWorker.js next to whichever bundle runs them.
    entry: { cli: './src/cli/index.ts', scanWorker: './src/core/scan/preprocessWorker.ts' },
    output: { path: path.resolve(__dirname, 'dist'), filename: '[name].js', libraryTarget: 'commonjs2' },
    externals: nativeExternals,
    plugins: [new webpack.BannerPlugin({ banner: '#!/usr/bin/env node', raw: true, entryOnly: true, include: /^cli\.js$/ })],
  },
  {
    name: 'webview',
    target: 'web',
    // The explanation panel, the dataset view and the Model view: separate bundles, each loaded only by its own webview.
    entry: { webview: './src/webview/main.ts', datasetView: './src/webview/dataset/main.ts', modelView: './src/webview/model/main.ts' },
    output: { path: path.resolve(__dirname, 'dist'), filename: '[name].js' },
    resolve: { extensions: ['.ts', '.js'] },
    module: { rules: [tsRule('src/webview/tsconfig.json')] },
    devtool: false,
    performance: { hints: false },
  },
];
