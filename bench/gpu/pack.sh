#!/usr/bin/env bash
# Packs what the device machine needs into .devbench/bundle.tar.xz (it has no npm registry).
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .devbench/stage && mkdir -p .devbench/stage/bin .devbench/stage/node_modules
cp "$(readlink -f "$(command -v node)")" .devbench/stage/bin/node
npx esbuild bench/gpu/deviceBench.ts --bundle --platform=node --target=node20 --external:onnxruntime-node --outfile=.devbench/stage/deviceBench.js --log-level=warning
cp -r node_modules/onnxruntime-common .devbench/stage/node_modules/
mkdir -p .devbench/stage/node_modules/onnxruntime-node/bin/napi-v6/linux
cp -r node_modules/onnxruntime-node/{package.json,dist,lib} .devbench/stage/node_modules/onnxruntime-node/
cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 .devbench/stage/node_modules/onnxruntime-node/bin/napi-v6/linux/
tar cJf .devbench/bundle.tar.xz -C .devbench/stage .
rm -rf .devbench/stage
ls -la .devbench/bundle.tar.xz
