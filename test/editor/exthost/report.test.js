// The portability report in the real extension host: a code lens above each SEC() program
// ("loads on N/M target kernels · needs ≥ …") that opens the report, ebpfPortability.codeLens.enable
// turning them off, and Show Portability Report opening its webview tab beside the editor.
// Runs after everyday.test.js (files load in name order) on a document of its own.
'use strict';
const assert = require('assert');
const vscode = require('vscode');

async function waitFor(what, fn, ms = 30_000) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

suite('the portability report in a real VS Code extension host', () => {
  let uri;
  const config = () => vscode.workspace.getConfiguration('ebpfPortability', uri);
  const lenses = async () => (await vscode.commands.executeCommand('vscode.executeCodeLensProvider', uri)) ?? [];
  const ours = async () => (await lenses()).filter((l) => l.command && l.command.command === 'ebpfPortability.showReport');

  suiteSetup(async () => {
    uri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders[0].uri, 'process-tracer.bpf.c');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
  });

  suiteTeardown(async () => {
    await config().update('codeLens.enable', undefined, vscode.ConfigurationTarget.Workspace);
  });

  test('a code lens above the SEC() program summarises where it loads and opens the report', async () => {
    const [lens] = await waitFor('a code lens', async () => {
      const l = await ours();
      return l.length ? l : undefined;
    });
    assert.match(lens.command.title, /^loads on \d+\/\d+ target kernels · needs ≥ \d+\.\d+/);
    const doc = await vscode.workspace.openTextDocument(uri);
    assert.match(doc.lineAt(lens.range.start.line).text, /SEC\("/);
    assert.strictEqual(lens.command.arguments[0], uri.toString());
  });

  test('ebpfPortability.codeLens.enable false removes the lenses, true brings them back', async () => {
    await config().update('codeLens.enable', false, vscode.ConfigurationTarget.Workspace);
    await waitFor('no code lens', async () => (await ours()).length === 0);
    await config().update('codeLens.enable', undefined, vscode.ConfigurationTarget.Workspace);
    await waitFor('the code lens back', async () => (await ours()).length > 0);
  });

  test('Show Portability Report opens its webview beside the file', async () => {
    await vscode.commands.executeCommand('ebpfPortability.showReport', uri.toString());
    const tab = await waitFor('the report tab', () =>
      vscode.window.tabGroups.all
        .flatMap((g) => g.tabs)
        .find((t) => t.label === 'Portability Report: process-tracer.bpf.c' && t.input instanceof vscode.TabInputWebview),
    );
    assert.ok(tab);
  });
});
