#!/usr/bin/env bash
# Runs on the device machine (GPU) from the repository root with .devbench and .gl carried:
#   .devbench/bundle.tar.xz  node + onnxruntime-node (linux-x64) + deviceBench.js   (bench/gpu/pack.sh)
#   .gl/*.deb                Vulkan/EGL loaders for WebGPU (device README)
# Each stage has its own time limit and writes its JSON lines under $OUT as it goes, so a stage that hangs
# (graph capture is the likeliest) costs only its own figures. About 5 minutes on an H200.
set -uo pipefail
OUT=${OUT:-/tmp/out}
WORK=/tmp/beit-gpu
mkdir -p /tmp/devbench "$WORK" && tar xJf .devbench/bundle.tar.xz -C /tmp/devbench
export PATH=/tmp/devbench/bin:$PATH
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
export DEVBENCH_FAMILIES=$PWD/test/fixtures/families
stage() { local name=$1 limit=$2; shift 2; local t0=$SECONDS; timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.jsonl"; echo "{\"stage\":\"$name\",\"rc\":${PIPESTATUS[0]},\"seconds\":$((SECONDS - t0))}" | tee -a "$OUT/stages.jsonl"; }
stage ort 210 node /tmp/devbench/deviceBench.js "$WORK"
stage torch 100 env PYTHONUNBUFFERED=1 python3 bench/gpu/torch_peer.py "$WORK"
stage hf 60 env PYTHONUNBUFFERED=1 python3 bench/gpu/hf_crosscheck.py "$WORK" "$DEVBENCH_FAMILIES"
stage experiments 110 node /tmp/devbench/deviceBench.js "$WORK" experiments
cp "$WORK"/ort-profile*.json "$OUT/" 2>/dev/null || true
