#!/usr/bin/env bash
# Headless Neovim as a second LSP client: starts `node bin/ebpf-portability.js lsp --stdio` on a copy
# of examples/process-tracer.bpf.c and checks diagnostics, a code action and its edit
# (nvim-lsp.lua). It needs dist/ to be built (npm run build) and nvim on PATH.
# Without nvim it prints "skipped: <reason>" and exits 0, unless CI is set: then it fails.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if ! command -v nvim >/dev/null 2>&1; then
  reason="nvim is not installed; run scripts/editor/setup.sh (or apt-get install neovim)"
  if [ -n "${CI:-}" ]; then echo "nvim: $reason" >&2; exit 1; fi
  echo "skipped: $reason"; exit 0
fi
if [ ! -f "$ROOT/dist/cli.js" ]; then
  echo "nvim: dist/cli.js is missing; run npm run build first" >&2; exit 1
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ebpf-nvim-XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/workspace"
cp "$ROOT/examples/process-tracer.bpf.c" "$TMP/workspace/"
start=$(date +%s%N)
# --clean skips the user's config, plugins and shada; the XDG dirs point into the temp dir so that
# nothing in the home directory is read or written.
status=0
EBPF_LSP_NODE="$(command -v node)" EBPF_LSP_BIN="$ROOT/bin/ebpf-portability.js" \
  XDG_CONFIG_HOME="$TMP/config" XDG_DATA_HOME="$TMP/data" XDG_STATE_HOME="$TMP/state" XDG_CACHE_HOME="$TMP/cache" \
  timeout -k 5 90 nvim --headless --clean -n -u "$HERE/nvim-lsp.lua" "$TMP/workspace/process-tracer.bpf.c" || status=$?
echo "nvim: finished with code $status in $(( ($(date +%s%N) - start) / 1000000 )) ms"
exit "$status"
