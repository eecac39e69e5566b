#!/usr/bin/env bash
# The real-editor tests (npm run test:editor), cheapest first: Neovim as an LSP client, the
# extension-host suite in code-server, then UI tests of the packaged .vsix in code-server (the
# smoke test, and the everyday features in a multi-root workspace, whose screenshots the README uses).
# It installs the editors first when EBPF_EDITOR_SETUP=1 or CI is set (scripts/editor/setup.sh,
# cached outside the repository). dist/ must be built (npm run build) and, for the UI test,
# ebpf-portability.vsix packaged (npm run package).
# Each step is bounded by `timeout` so a hang fails the step instead of the whole run; the run
# ends with a plain "editor: N passed, N failed" line and exits non-zero if anything failed.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
passed=0
failed=0
skipped=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

step() { # NAME TIMEOUT_S COMMAND...
  local name=$1 limit=$2 start=$SECONDS status
  shift 2
  echo "=== $name"
  timeout -k 15 "$limit" "$@" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  # A check whose editor is not installed says "skipped:" and exits 0 (outside CI); it is
  # counted as skipped so that the closing line never claims a pass that did not happen.
  if [ "$status" = 0 ] && grep -q '^skipped: ' "$out"; then
    skipped=$((skipped + 1))
    echo "=== $name: skipped"
  elif [ "$status" = 0 ]; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - start))s)"
  else
    failed=$((failed + 1))
    [ "$status" = 124 ] && echo "=== $name: timed out after ${limit}s"
    echo "=== $name: FAILED with status $status ($((SECONDS - start))s)"
  fi
}

# Setup is not a test, so it is only counted when it fails (and then the checks that follow fail
# too in CI, each naming what is missing).
if [ "${EBPF_EDITOR_SETUP:-}" = 1 ] || [ -n "${CI:-}" ]; then
  echo "=== editor setup (scripts/editor/setup.sh)"
  if ! timeout -k 15 1500 bash "$ROOT/scripts/editor/setup.sh"; then
    failed=$((failed + 1))
    echo "=== editor setup: FAILED"
  fi
fi
step "Neovim LSP client (test/editor/nvim-lsp.sh)" 120 bash "$HERE/nvim-lsp.sh"
step "VS Code extension host (test/editor/run-exthost.mjs)" 600 node "$HERE/run-exthost.mjs"
step "VS Code UI with the .vsix (test/editor/ui-smoke.mjs)" 300 node "$HERE/ui-smoke.mjs"
step "VS Code everyday UI with the .vsix, multi-root (test/editor/ui-everyday.mjs)" 400 node "$HERE/ui-everyday.mjs"

echo "editor: $passed passed, $failed failed$([ "$skipped" = 0 ] || echo ", $skipped skipped")"
[ "$failed" = 0 ]
