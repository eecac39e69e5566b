// Runs inside the real VS Code extension host (code-server 1.139 through vscode-test-shim.mjs) with
// the extension loaded from the repository (extensionDevelopmentPath) and a temporary workspace
// holding copies of examples/*.bpf.c and plain.c. Everything goes through the public `vscode` API,
// so these tests see what a user's editor sees: the client, the IPC transport, the bundled server.
'use strict';
const assert = require('assert');
const vscode = require('vscode');

const SOURCE = 'ebpf-portability';
const RULE = 'unsafe-kernel-deref';
const EXTENSION_ID = 'ebpf-portability.ebpf-portability-linter';
const PPID_LINE = 'e->ppid = task->real_parent->tgid;';
const PID_LINE = 'e->pid = task->tgid;';
const FIX_TITLE = 'Read with BPF_CORE_READ(task, real_parent, tgid)';
const FIXED_LINE = 'e->ppid = BPF_CORE_READ(task, real_parent, tgid);';

/** Polls `fn` until it returns a truthy value, or fails naming what it waited for. */
async function waitFor(what, fn, ms = 30_000) {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A diagnostic's code as a string: with a rule doc link, VS Code gives `{ value, target }`. */
function codeOf(d) {
  return d.code !== null && typeof d.code === 'object' ? String(d.code.value) : String(d.code);
}

/** The line number of the first line whose trimmed text is `text`. */
function lineOf(doc, text) {
  for (let i = 0; i < doc.lineCount; i++) if (doc.lineAt(i).text.trim() === text) return i;
  throw new Error(`"${text}" is not in ${doc.uri.fsPath}`);
}

/** This rule's diagnostics from this server on one line. */
function ruleDiagnostics(uri, line) {
  return vscode.languages.getDiagnostics(uri).filter((d) => d.source === SOURCE && codeOf(d) === RULE && d.range.start.line === line);
}

function describe(uri) {
  const all = vscode.languages.getDiagnostics(uri);
  return all.length ? all.map((d) => `${d.range.start.line + 1}: [${d.source} ${codeOf(d)}] ${d.message}`).join('; ') : 'no diagnostics';
}

suite('eBPF portability in a real VS Code extension host', () => {
  let folder;
  let tracer;
  let doc;
  let opened;

  suiteSetup(async () => {
    folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];
    assert.ok(folder, 'the runner opens a workspace folder');
    tracer = vscode.Uri.joinPath(folder.uri, 'process-tracer.bpf.c');
    doc = await vscode.workspace.openTextDocument(tracer);
    await vscode.window.showTextDocument(doc);
    opened = Date.now();
  });

  test('a .bpf.c file is C and activates the extension', async () => {
    assert.strictEqual(doc.languageId, 'c');
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is loaded from the repository`);
    await waitFor('the extension to activate', () => ext.isActive);
  });

  test(`${RULE} is reported on "${PPID_LINE}"`, async () => {
    const line = lineOf(doc, PPID_LINE);
    const found = await waitFor(`a ${RULE} diagnostic on line ${line + 1} (have: ${describe(tracer)})`, () => {
      const d = ruleDiagnostics(tracer, line);
      return d.length ? d : undefined;
    });
    console.log(`    (the ${RULE} diagnostic was there ${Date.now() - opened} ms after the file was opened)`);
    assert.strictEqual(found[0].source, SOURCE);
    assert.match(found[0].message, /real_parent|task/);
  });

  test(`the quick fix "${FIX_TITLE}" rewrites the line and the diagnostic goes away`, async () => {
    const line = lineOf(doc, PPID_LINE);
    const [diag] = ruleDiagnostics(tracer, line);
    assert.ok(diag, `a ${RULE} diagnostic on line ${line + 1} (have: ${describe(tracer)})`);
    const actions = await vscode.commands.executeCommand('vscode.executeCodeActionProvider', tracer, diag.range);
    const titles = (actions || []).map((a) => a.title);
    const fix = (actions || []).find((a) => a.title === FIX_TITLE);
    assert.ok(fix, `a quick fix titled "${FIX_TITLE}" (offered: ${JSON.stringify(titles)})`);
    assert.ok(fix.edit, 'the quick fix carries a workspace edit');
    assert.strictEqual(await vscode.workspace.applyEdit(fix.edit), true, 'applyEdit succeeds');
    assert.strictEqual(doc.lineAt(line).text.trim(), FIXED_LINE);
    await waitFor(`the ${RULE} diagnostic on line ${line + 1} to go (have: ${describe(tracer)})`, () => ruleDiagnostics(tracer, line).length === 0);
    // The other unsafe read in the file is untouched, so the server re-analysed rather than
    // clearing everything.
    const pidLine = lineOf(doc, PID_LINE);
    assert.ok(ruleDiagnostics(tracer, pidLine).length > 0, `"${PID_LINE}" is still reported (have: ${describe(tracer)})`);
  });

  test(`ebpfPortability.rules {"${RULE}": "off"} clears its diagnostics, and resetting brings them back`, async () => {
    const pidLine = lineOf(doc, PID_LINE);
    await waitFor(`a ${RULE} diagnostic on line ${pidLine + 1}`, () => ruleDiagnostics(tracer, pidLine).length > 0);
    const config = () => vscode.workspace.getConfiguration('ebpfPortability', tracer);
    try {
      await config().update('rules', { [RULE]: 'off' }, vscode.ConfigurationTarget.Global);
      await waitFor(`no ${RULE} diagnostics with the rule off (have: ${describe(tracer)})`,
        () => vscode.languages.getDiagnostics(tracer).every((d) => codeOf(d) !== RULE));
    } finally {
      await config().update('rules', undefined, vscode.ConfigurationTarget.Global);
    }
    await waitFor(`the ${RULE} diagnostic to return after the reset (have: ${describe(tracer)})`, () => ruleDiagnostics(tracer, pidLine).length > 0);
  });

  test('a plain C program gets no diagnostics', async () => {
    const plain = vscode.Uri.joinPath(folder.uri, 'plain.c');
    // The server answers a non-BPF file with an empty publish; waiting for that event shows it
    // looked at the file, so the emptiness below is its verdict and not a race.
    const published = new Promise((resolve) => {
      const sub = vscode.languages.onDidChangeDiagnostics((e) => {
        if (e.uris.some((u) => u.toString() === plain.toString())) {
          sub.dispose();
          resolve(true);
        }
      });
      setTimeout(() => {
        sub.dispose();
        resolve(false);
      }, 15_000);
    });
    const plainDoc = await vscode.workspace.openTextDocument(plain);
    await vscode.window.showTextDocument(plainDoc);
    assert.strictEqual(plainDoc.languageId, 'c');
    assert.match(plainDoc.getText(), /int main\(void\)/);
    assert.ok(await published, 'the server published diagnostics for plain.c');
    assert.deepStrictEqual(vscode.languages.getDiagnostics(plain).map((d) => d.message), []);
  });
});
