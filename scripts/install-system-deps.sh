#!/usr/bin/env bash
# Debian packages the test suites need: Chromium for the webview and workbench tests, a Vulkan device for the
# WebGPU provider tests, and protoc with Python's protobuf runtime, which parse the exported Triton config.pbtxt
# against Triton's model_config.proto (test/fixtures/triton/). Machines without a GPU get Mesa's lavapipe, a
# conformant Vulkan implementation on the CPU; Dawn (onnxruntime's WebGPU) needs features lavapipe gained after
# Debian 12's Mesa 22.3, so on bookworm it comes from bookworm-backports (Mesa 25).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
/usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1 || need+=(python3-protobuf)

vulkan_ready() {
  local mesa
  mesa=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  # grep reads the whole cache listing: with -q it would stop at the first match, ldconfig would die of
  # SIGPIPE once the listing outgrows the pipe buffer (64 KiB), and pipefail would call that a failure.
  [ -n "$mesa" ] && dpkg --compare-versions "$mesa" ge 23 && ldconfig -p | grep 'libvulkan\.so\.1' >/dev/null
}
need_vulkan=0
if command -v dpkg-query >/dev/null 2>&1 && ! vulkan_ready; then need_vulkan=1; fi

if [ ${#need[@]} -eq 0 ] && [ $need_vulkan -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  missing=("${need[@]}")
  [ $need_vulkan -eq 0 ] || missing+=('libvulkan1 mesa-vulkan-drivers>=23 (Debian 12: from bookworm-backports)')
  echo "missing Debian packages: ${missing[*]} (run this script as root)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
vulkan_release=()
if [ $need_vulkan -eq 1 ] && [ "$codename" = bookworm ]; then
  grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ ||
    echo 'deb http://deb.debian.org/debian bookworm-backports main' >/etc/apt/sources.list.d/bookworm-backports.list
  vulkan_release=(-t bookworm-backports)
fi
apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi
if [ $need_vulkan -eq 1 ]; then
  apt-get install -y -qq --no-install-recommends "${vulkan_release[@]}" libvulkan1 mesa-vulkan-drivers >/dev/null
  vulkan_ready || { echo "Mesa's Vulkan drivers are still older than 23 after installing: the WebGPU tests need a newer lavapipe" >&2; exit 1; }
fi
