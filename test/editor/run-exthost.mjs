#!/usr/bin/env node
// Runs the extension-host tests (test/editor/exthost/) in a real VS Code: @vscode/test-electron's
// runTests with the code-server shim as the "VS Code executable". It builds nothing: dist/ must
// already hold the bundled extension and server (npm run build).
//
// Without the editor install (scripts/editor/setup.sh) it prints "skipped: <reason>" and exits 0,
// unless CI is set: in CI a missing install is a failure, so a broken setup cannot pass silently.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CACHE, TOOLS, missingForCodeServer, requireTool } from './lib/install.mjs';

const here = import.meta.dirname;
const root = path.resolve(here, '..', '..');

const missing = missingForCodeServer();
if (missing.length) {
  const reason = `the editor install is absent (${missing.join(', ')}); run scripts/editor/setup.sh`;
  if (process.env.CI) {
    console.error(`exthost: ${reason}`);
    process.exit(1);
  }
  console.log(`skipped: ${reason}`);
  process.exit(0);
}
for (const built of ['dist/extension.js', 'dist/server.js']) {
  if (!fs.existsSync(path.join(root, built))) {
    console.error(`exthost: ${built} is missing; run npm run build first`);
    process.exit(1);
  }
}

// The workspace is a copy, so the quick fix the tests apply never touches the examples.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-exthost-'));
const workspace = path.join(tmp, 'workspace');
fs.mkdirSync(workspace);
const examples = path.join(root, 'examples');
for (const f of fs.readdirSync(examples)) if (f.endsWith('.bpf.c')) fs.copyFileSync(path.join(examples, f), path.join(workspace, f));
// A C file with nothing BPF about it: the server must leave it alone.
fs.writeFileSync(path.join(workspace, 'plain.c'), 'int main(void){return 0;}\n');

const { runTests } = requireTool('@vscode/test-electron');
const t0 = Date.now();
let code;
try {
  code = await runTests({
    vscodeExecutablePath: path.join(here, 'vscode-test-shim.mjs'),
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(here, 'exthost', 'index.js'),
    // A fresh profile per run instead of test-electron's shared .vscode-test/user-data, so a
    // setting left behind by an interrupted run cannot leak into the next one.
    launchArgs: [workspace, `--user-data-dir=${path.join(tmp, 'user-data')}`, `--extensions-dir=${path.join(tmp, 'extensions')}`],
    // The extension host inherits this environment; the suite loads mocha from the cache.
    // Imported kernels go to a store of the run's own; the BTF file is the mini fixture's.
    extensionTestsEnv: {
      EBPF_EDITOR_CACHE: CACHE,
      EBPF_EDITOR_TOOLS: TOOLS,
      EBPF_PORTABILITY_HOME: path.join(tmp, 'imported-kernels'),
      EBPF_TEST_BTF: path.join(root, 'test', 'fixtures', 'kernel-data-mini', 'btf', 'debian-7.3.4-amd64.btf.xz'),
    },
  });
} catch (e) {
  console.error(`exthost: ${e.message ?? e}`);
  code = typeof e?.code === 'number' && e.code !== 0 ? e.code : 1;
} finally {
  if (process.env.EBPF_EDITOR_KEEP) console.error(`exthost: kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`exthost: finished with code ${code} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
process.exit(code);
