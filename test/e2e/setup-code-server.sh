#!/usr/bin/env bash
# Installs code-server (a real VS Code workbench served over HTTP, with a Node extension host) for
# the end-to-end tests, without any download outside the npm registry and Debian's packages.
# Idempotent: a finished install leaves a marker and later runs return at once.
set -euo pipefail
VERSION=4.100.3
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="${CODE_SERVER_DIR:-$ROOT/.cache/code-server}"
MARKER="$DEST/.installed-$VERSION"
[ -f "$MARKER" ] && { echo "$DEST/node_modules/code-server"; exit 0; }

# Native modules of the workbench (kerberos, native-keymap, keytar, ...) build against these, with
# node-gyp (a compiler, make, python3).
need=()
for pkg in build-essential python3 pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev ripgrep; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "missing Debian packages: ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$DEST"
cd "$DEST"
[ -f package.json ] || echo '{"name":"beit-lens-code-server","private":true}' > package.json
# Its postinstall would run `npm install` inside lib/vscode with scripts that download ripgrep
# from GitHub; do those steps by hand instead.
npm install --no-audit --no-fund --ignore-scripts "code-server@$VERSION" >/dev/null
CS="$DEST/node_modules/code-server"
cd "$CS/lib/vscode"
npm install --no-audit --no-fund --omit=dev --ignore-scripts >/dev/null
mkdir -p node_modules/@vscode/ripgrep/bin
cp /usr/bin/rg node_modules/@vscode/ripgrep/bin/rg
npm_config_yes=true npm rebuild >/dev/null 2>&1 || npm_config_yes=true npm rebuild
# The links code-server's postinstall.sh makes.
rm -rf node_modules.asar && ln -s node_modules node_modules.asar
(cd bin/remote-cli && rm -f code-server && ln -s code-linux.sh code-server)
(cd bin/helpers && rm -f browser.sh && ln -s browser-linux.sh browser.sh)
# argon2 (password hashing) is hoisted to the top-level node_modules; its binding builds from source.
cd "$DEST"
npm rebuild argon2 >/dev/null
touch "$MARKER"
echo "$CS"
