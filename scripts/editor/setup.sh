#!/usr/bin/env bash
# Installs what the real-editor tests (npm run test:editor) need, outside the repository, so that
# nothing large is ever committed and a second run costs seconds. It is idempotent: every step
# checks a version stamp or the installed binary first and prints what it did or skipped.
#
#   $CACHE/node24/package/bin/node      Node 24 from the npm package node-linux-<arch>; code-server
#                                       4.139 refuses any other Node in its postinstall.
#   $CACHE/code-server/node_modules/code-server
#                                       VS Code 1.139.1 as a server with a web workbench and a real
#                                       Node extension host (the VS Code desktop download is unreachable).
#   $CACHE/tools/node_modules/          @vscode/test-electron, mocha and playwright-core for the tests.
#
# Debian packages: chromium (the browser that shows code-server's workbench), libkrb5-dev and
# pkg-config (code-server's kerberos module compiles against gssapi), neovim (a second LSP client).
#
# Env: EBPF_EDITOR_CACHE (default ~/.cache/ebpf-portability-editor).
set -euo pipefail

CACHE="${EBPF_EDITOR_CACHE:-$HOME/.cache/ebpf-portability-editor}"
# Exact versions: a new code-server release or Node requirement must not change what CI runs.
# @vscode/test-electron stays on 2.5.2 because 3.x requires Node 22 and the runner uses the
# machine's Node 20.
CODE_SERVER_VERSION=4.139.1
NODE24_VERSION=24.21.0
TEST_ELECTRON_VERSION=2.5.2
MOCHA_VERSION=12.0.3
PLAYWRIGHT_VERSION=1.65.1

SECONDS=0
say() { echo "[editor-setup +${SECONDS}s] $*"; }
mkdir -p "$CACHE"
say "cache: $CACHE"

# 1. Debian packages, only those that are missing, with one apt-get update before installing.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v nvim >/dev/null 2>&1 || need+=(neovim)
# pngquant: scripts/editor/readme-shots.mjs makes the README screenshots small.
command -v pngquant >/dev/null 2>&1 || need+=(pngquant)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "editor-setup: missing ${need[*]}; install them with your package manager (Debian: apt-get install ${need[*]})" >&2
    exit 1
  fi
  say "apt-get update"
  timeout 600 apt-get update -qq
  say "apt-get install ${need[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -qq "${need[@]}" >"$CACHE/apt.log" 2>&1 ||
    { tail -30 "$CACHE/apt.log"; echo "editor-setup: apt-get install failed (log: $CACHE/apt.log)" >&2; exit 1; }
else
  say "apt packages present (chromium, libkrb5-dev, pkg-config, neovim)"
fi

# 2. Node 24. The npm package contains the official binary, so the npm registry is all it needs.
case "$(uname -m)" in
  x86_64) node_arch=x64 ;;
  aarch64 | arm64) node_arch=arm64 ;;
  *) echo "editor-setup: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
N24="$CACHE/node24/package"
if "$N24/bin/node" --version 2>/dev/null | grep -qx "v$NODE24_VERSION"; then
  say "node $NODE24_VERSION present"
else
  say "node-linux-$node_arch@$NODE24_VERSION"
  rm -rf "$CACHE/node24" && mkdir -p "$CACHE/node24"
  (cd "$CACHE/node24" &&
    timeout 600 npm pack --silent "node-linux-$node_arch@$NODE24_VERSION" >/dev/null &&
    tar xzf node-linux-*.tgz && rm -f node-linux-*.tgz)
  "$N24/bin/node" --version | grep -qx "v$NODE24_VERSION"
fi

# 3. code-server, installed by npm running on Node 24 (its postinstall checks npm's user agent) and
#    with native modules compiled against Node 24's headers (npm_config_nodedir; a user's .npmrc
#    may point nodedir at the system Node). The allowScripts field keeps its install scripts
#    running should npm start enforcing allowScripts.
CS="$CACHE/code-server"
if [ "$(cat "$CS/.installed-version" 2>/dev/null)" = "$CODE_SERVER_VERSION" ] &&
  [ -f "$CS/node_modules/code-server/out/node/entry.js" ]; then
  say "code-server $CODE_SERVER_VERSION present"
else
  say "code-server@$CODE_SERVER_VERSION (compiles native modules; about 2-4 minutes on 2 cores)"
  rm -rf "$CS" && mkdir -p "$CS"
  echo '{"private":true,"allowScripts":{"code-server":true,"argon2":true}}' >"$CS/package.json"
  # NODE_DISABLE_COMPILE_CACHE keeps npm on Node 24 from leaving a compile cache in /tmp.
  # Run from `npm run test:editor`, the outer npm (Node 20) exports npm_config_* variables, among
  # them its user agent, which the inner npm would pass on to code-server's postinstall check.
  if ! (cd "$CS" && for v in $(compgen -e | grep '^npm_'); do unset "$v"; done &&
    PATH="$N24/bin:$PATH" npm_config_nodedir="$N24" NODE_DISABLE_COMPILE_CACHE=1 \
    timeout 1200 npm install --foreground-scripts --no-audit --no-fund --no-save \
    "code-server@$CODE_SERVER_VERSION") >"$CACHE/code-server-install.log" 2>&1; then
    tail -40 "$CACHE/code-server-install.log"
    echo "editor-setup: code-server install failed (log: $CACHE/code-server-install.log)" >&2
    exit 1
  fi
  echo "$CODE_SERVER_VERSION" >"$CS/.installed-version"
fi

# 4. The test tools, with the machine's Node 20 npm. Playwright is only the driver: it drives
#    Debian's chromium, so its browser download is switched off.
TOOLS="$CACHE/tools"
tools_manifest="{\"private\":true,\"dependencies\":{\"@vscode/test-electron\":\"$TEST_ELECTRON_VERSION\",\"mocha\":\"$MOCHA_VERSION\",\"playwright-core\":\"$PLAYWRIGHT_VERSION\"}}"
if [ "$(cat "$TOOLS/.installed-manifest" 2>/dev/null)" = "$tools_manifest" ] && [ -d "$TOOLS/node_modules/mocha" ]; then
  say "test tools present (@vscode/test-electron $TEST_ELECTRON_VERSION, mocha $MOCHA_VERSION, playwright-core $PLAYWRIGHT_VERSION)"
else
  say "test tools: @vscode/test-electron@$TEST_ELECTRON_VERSION mocha@$MOCHA_VERSION playwright-core@$PLAYWRIGHT_VERSION"
  rm -rf "$TOOLS" && mkdir -p "$TOOLS"
  echo "$tools_manifest" >"$TOOLS/package.json"
  (cd "$TOOLS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 600 npm install --no-audit --no-fund --silent)
  echo "$tools_manifest" >"$TOOLS/.installed-manifest"
fi

size="$(du -sh "$CACHE" 2>/dev/null | cut -f1)"
say "done: $size in $CACHE"
