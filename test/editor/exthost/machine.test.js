// Check This Machine and Import Kernel BTF in the real extension host: the machine page opens;
// importing a kernel's BTF (the file and name given, as the file picker and input boxes would)
// lands in the store (EBPF_PORTABILITY_HOME, a temporary folder of run-exthost.mjs), adds the
// kernel to the target kernels, and the status item counts one kernel more.
// Runs before report.test.js and after everyday.test.js (files load in name order).
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');

async function waitFor(what, fn, ms = 60_000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

suite('this machine and imported kernels in a real VS Code extension host', () => {
  let uri;
  let api;
  const config = () => vscode.workspace.getConfiguration('ebpfPortability', uri);
  const count = () => Number((/ · (\d+) kernels$/.exec(api.statusItem.text) || [])[1]);

  suiteSetup(async () => {
    uri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders[0].uri, 'task-flavors.bpf.c');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
    api = await vscode.extensions.getExtension('ebpf-portability.ebpf-portability-linter').activate();
    await waitFor('the kernel count', () => count() > 0);
  });

  suiteTeardown(async () => {
    await config().update('targetKernels', undefined, vscode.ConfigurationTarget.Workspace);
  });

  test('Check This Machine opens its page', async () => {
    await vscode.commands.executeCommand('ebpfPortability.checkMachine');
    await waitFor('the machine tab', () =>
      vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label === 'Check This Machine' && t.input instanceof vscode.TabInputWebview),
    );
  });

  test('Import Kernel BTF adds the kernel to the store and the target; the status counts it', async () => {
    const home = process.env.EBPF_PORTABILITY_HOME;
    assert.ok(home && process.env.EBPF_TEST_BTF, 'run-exthost.mjs sets the store and the BTF file');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
    await config().update('targetKernels', '7.0+', vscode.ConfigurationTarget.Workspace);
    await waitFor(`the status to say 7.0+ (is ${api.statusItem.text})`, () => /^eBPF 7\.0\+ /.test(api.statusItem.text));
    const before = count();
    const ok = await vscode.commands.executeCommand('ebpfPortability.importKernel', process.env.EBPF_TEST_BTF, 'fleet-7.3.4', '7.3.4');
    assert.strictEqual(ok, true);
    assert.ok(fs.readFileSync(path.join(home, 'index.json'), 'utf8').includes('"fleet-7.3.4"'));
    assert.strictEqual(config().inspect('targetKernels').workspaceValue, '7.0+,fleet-7.3.4');
    await waitFor(`${before + 1} kernels (is ${api.statusItem.text})`, () => count() === before + 1);
  });
});
