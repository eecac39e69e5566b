// The extension's everyday conventions in the real extension host: the language-status item (the
// extension's API hands the item itself, so the test reads what users see), Select Target Kernels
// changing the target and the findings, an invalid setting shown in the item, Restart Server.
// Runs after diagnostics.test.js (files load in name order) on a document of its own.
'use strict';
const assert = require('assert');
const vscode = require('vscode');

const EXTENSION_ID = 'ebpf-portability.ebpf-portability-linter';

async function waitFor(what, fn, ms = 30_000) {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

suite('everyday use in a real VS Code extension host', () => {
  let api;
  let uri;
  const item = () => api.statusItem;
  const ours = () => vscode.languages.getDiagnostics(uri).filter((d) => d.source === 'ebpf-portability');
  const config = () => vscode.workspace.getConfiguration('ebpfPortability', uri);

  suiteSetup(async () => {
    const folder = vscode.workspace.workspaceFolders[0];
    uri = vscode.Uri.joinPath(folder.uri, 'task-flavors.bpf.c');
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    api = await ext.activate();
    assert.ok(api && api.statusItem, 'the extension returns its status item');
    await waitFor('the status to show the kernel count', () => / · \d+ kernels$/.test(item().text));
  });

  suiteTeardown(async () => {
    await config().update('targetKernels', undefined, vscode.ConfigurationTarget.Workspace);
    await config().update('distros', undefined, vscode.ConfigurationTarget.Workspace);
  });

  test('the status item shows the target, the kernel count and a running server', () => {
    assert.match(item().text, /^eBPF 4\.14-7\.x x86_64,arm64 · \d+ kernels$/);
    assert.strictEqual(item().detail, 'server running');
    assert.strictEqual(item().severity, vscode.LanguageStatusSeverity.Information);
  });

  test('Select Target Kernels (the 5.8+ preset) changes the setting, the status and the findings', async () => {
    await waitFor('findings on the wide target', () => ours().length > 0);
    const before = ours().length;
    const count = Number(/ · (\d+) kernels$/.exec(item().text)[1]);
    await vscode.commands.executeCommand('ebpfPortability.selectTarget', '5.8+');
    assert.strictEqual(config().inspect('targetKernels').workspaceValue, '5.8+');
    await waitFor(`the status to say 5.8+ (is: ${item().text})`, () => /^eBPF 5\.8\+ /.test(item().text));
    assert.ok(Number(/ · (\d+) kernels$/.exec(item().text)[1]) < count, item().text);
    await waitFor(`fewer findings than ${before} on 5.8+`, () => ours().length < before);
  });

  test('an invalid target is named in the status item, which opens the settings', async () => {
    await config().update('targetKernels', 'banana', vscode.ConfigurationTarget.Workspace);
    await waitFor(`the status to report the setting (is: ${item().detail})`, () => /targetKernels/.test(item().detail || ''));
    assert.strictEqual(item().severity, vscode.LanguageStatusSeverity.Warning);
    assert.strictEqual(item().command.command, 'workbench.action.openSettings');
    await config().update('targetKernels', undefined, vscode.ConfigurationTarget.Workspace);
    await waitFor('the status to recover', () => item().detail === 'server running');
  });

  test('Restart Server brings the server and the findings back', async () => {
    await waitFor('findings before the restart', () => ours().length > 0);
    await vscode.commands.executeCommand('ebpfPortability.restartServer');
    await waitFor(`the server to run again (is: ${item().detail})`, () => item().detail === 'server running');
    await waitFor('findings after the restart', () => ours().length > 0);
  });
});
