#!/usr/bin/env bash
# Runs on the device machine (GPU) from the repository root with .devbench carried:
#   .devbench/bundle.tar.xz  node + onnxruntime-node (linux-x64) + deviceBench.js   (bench/gpu/pack.sh)
#   .gl/*.deb                Vulkan/EGL loaders for WebGPU (device README)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p /tmp/devbench && tar xJf .devbench/bundle.tar.xz -C /tmp/devbench
export PATH=/tmp/devbench/bin:$PATH
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
# onnxruntime's CUDA provider is not in the npm package; borrow the Python wheel's if it has one.
cuda_lib=$(python3 -c "import onnxruntime, os; d=os.path.join(os.path.dirname(onnxruntime.__file__),'capi'); print(d)" 2>/dev/null)
ls "$cuda_lib" 2>/dev/null | grep -i provider
if [ -f "$cuda_lib/libonnxruntime_providers_cuda.so" ]; then
  cp "$cuda_lib"/libonnxruntime_providers_{cuda,shared}.so /tmp/devbench/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/
fi
cd /tmp/devbench
node deviceBench.js /tmp/beit-gpu 2>&1 | tee "$OUT/ort.jsonl"
cd - >/dev/null
python3 bench/gpu/torch_peer.py /tmp/beit-gpu/hf-base 2>&1 | tee "$OUT/torch.jsonl"
