/**
 * The VS Code extension: starts the bundled language server once a BPF document is open (a
 * `*.bpf.c`, C that includes BPF headers or uses `SEC(`, or a Python BCC tool), and gives it the conventions of a
 * language extension: an output channel from the start (with `ebpfPortability.trace.server`),
 * Restart Server / Show Output / Select Target Kernels commands, a language-status item on BPF
 * documents (target, kernel count, server state, settings problems), rule docs shown rendered.
 * This is the only code that imports `vscode`.
 */
import * as vscode from 'vscode';
import { LanguageClient, State, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { type MachineData, machineHtml } from './machine';
import type { ReportData } from './report';
import { ReportPanel } from './reportPanel';

const SECTION = 'ebpfPortability';

/** What the server says of a document's target (`ebpfPortability/status`, see server/src/lsp/server.ts). */
interface Status {
  readonly uri: string;
  readonly target: string;
  readonly architectures: readonly string[];
  readonly kernels: number;
  readonly problems: readonly string[];
}

/** What the extension gives other extensions and its tests: the status item as users see it. */
export interface Api {
  readonly statusItem: vscode.LanguageStatusItem;
  /** Whether a document counts as BPF C here. */
  isBpf(doc: vscode.TextDocument): boolean;
}

let client: LanguageClient | undefined;

/** BPF-side headers, `SEC(`, BCC's map and probe macros: a cheap look at a C file before starting the server. */
const BPF_HINT =
  /#\s*include\s*[<"](?:bpf\/bpf_(?:helpers|tracing|core_read|endian)\.h|(?:[^>"]*\/)?vmlinux[^/>"]*\.h|bcc\/)|\bSEC\s*\(\s*"|\bBPF_(?:HASH|ARRAY|PERF_OUTPUT|RINGBUF_OUTPUT|TABLE)\s*\(/;

/** A Python file importing bcc: a BCC tool whose `BPF(text=…)` program the server checks. */
const BCC_IMPORT = /^[ \t]*(?:from[ \t]+bcc(?:\.\w+)*[ \t]+import\b|import[ \t]+(?:[\w.]+[ \t]*,[ \t]*)*bcc\b)/m;

function isBpf(doc: vscode.TextDocument): boolean {
  if (doc.uri.scheme !== 'file' && doc.uri.scheme !== 'untitled') return false;
  if (/\.bpf\.(c|h)$/.test(doc.uri.path)) return true;
  if (doc.languageId === 'python') return BCC_IMPORT.test(doc.getText(new vscode.Range(0, 0, 400, 0)));
  if (doc.languageId !== 'c') return false;
  return BPF_HINT.test(doc.getText(new vscode.Range(0, 0, 400, 0)));
}

/** Activates the extension (on a C file or a workspace with `*.bpf.c`); the server starts with the first BPF document. */
export async function activate(context: vscode.ExtensionContext): Promise<Api> {
  const output = vscode.window.createOutputChannel('eBPF Portability');
  context.subscriptions.push(output);
  const module = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    // stdio: the server encodes each published diagnostic once there (server/src/lsp/wire.ts);
    // over IPC, Node would serialise every publish whole again.
    run: { module, transport: TransportKind.stdio },
    debug: { module, transport: TransportKind.stdio, options: { execArgv: ['--nolazy', '--inspect=6011'] } },
  };
  const statuses = new Map<string, Status>();
  const bpfDocs = new Set<string>();
  const item = vscode.languages.createLanguageStatusItem('ebpfPortability.status', selectorFor(bpfDocs));
  item.name = 'eBPF Portability';
  context.subscriptions.push(item);
  let state = 'not started';
  let restarting = false;

  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'c' },
      { scheme: 'untitled', language: 'c' },
      { scheme: 'file', pattern: '**/*.bpf.{c,h}' },
      // BCC tools in Python (the server analyses only those that import bcc).
      { scheme: 'file', language: 'python' },
      { scheme: 'untitled', language: 'python' },
    ],
    outputChannel: output,
    initializationOptions: { showRuleDocCommand: true, statusNotification: true },
    synchronize: {
      configurationSection: SECTION,
      // Headers, user-space loaders and project files the analysis reads from disk.
      fileEvents: vscode.workspace.createFileSystemWatcher('**/{*.h,*.c,.ebpf-portability.json,compile_commands.json,compile_flags.txt}'),
    },
    middleware: {
      // In an untrusted workspace nothing is run: no clang, so no object pass.
      workspace: {
        async configuration(params, token, next) {
          const result = await next(params, token);
          if (vscode.workspace.isTrusted || !Array.isArray(result)) return result;
          return result.map((r, i) =>
            params.items[i]?.section === SECTION && r && typeof r === 'object' ? { ...(r as object), compile: 'off' } : r,
          );
        },
      },
      // Code lenses (a program's summary above its SEC()) unless ebpfPortability.codeLens.enable is off.
      provideCodeLenses(document, token, next) {
        if (!vscode.workspace.getConfiguration(SECTION, document.uri).get<boolean>('codeLens.enable', true)) return [];
        return next(document, token);
      },
      // A rule's documentation link opens it rendered, not as an editable file of the install.
      handleDiagnostics(uri, diagnostics, next) {
        for (const d of diagnostics) {
          if (d.code && typeof d.code === 'object' && d.source === 'ebpf-portability') {
            const rule = String(d.code.value);
            d.code = {
              value: rule,
              target: vscode.Uri.parse(`command:ebpfPortability.showRuleDoc?${encodeURIComponent(JSON.stringify([rule]))}`),
            };
          }
        }
        next(uri, diagnostics);
      },
    },
  };

  const refresh = () => refreshStatus(item, statuses, state, vscode.window.activeTextEditor?.document);
  const start = async () => {
    if (client) return;
    client = new LanguageClient(SECTION, 'eBPF Portability', serverOptions, clientOptions);
    client.onDidChangeState((e) => {
      // A restart shows as one state from the command until the server runs again.
      if (e.newState === State.Running) restarting = false;
      state = e.newState === State.Running ? 'running' : restarting ? 'restarting' : e.newState === State.Starting ? 'starting' : 'stopped';
      refresh();
    });
    client.onNotification('ebpfPortability/status', (s: Status) => {
      const before = statuses.get(s.uri);
      statuses.set(s.uri, s);
      if (s.problems.length && before?.problems.join('\n') !== s.problems.join('\n')) reportProblems(s.problems);
      refresh();
    });
    await client.start();
  };
  const track = (doc: vscode.TextDocument) => {
    if (!isBpf(doc)) return;
    if (!bpfDocs.has(doc.uri.toString())) {
      bpfDocs.add(doc.uri.toString());
      item.selector = selectorFor(bpfDocs);
    }
    void start().catch((e) => output.appendLine(`cannot start the language server: ${(e as Error).message}`));
  };

  /** The portability report of a document, from the server (null when it is not a BPF C program). */
  const requestReport = async (uri: vscode.Uri): Promise<ReportData | null> => {
    await start();
    return client!.sendRequest<ReportData | null>('ebpfPortability/report', {
      uri: uri.toString(),
      path: vscode.workspace.asRelativePath(uri, false),
    });
  };
  const reportPanel = new ReportPanel(requestReport);
  /** The document a report command is about: its argument, else the active editor's, else the open report's. */
  const reportTarget = (uri?: string | vscode.Uri): vscode.Uri | undefined =>
    typeof uri === 'string' ? vscode.Uri.parse(uri) : (uri ?? vscode.window.activeTextEditor?.document.uri ?? reportPanel.document);

  /**
   * Imports a kernel's BTF into the store `db add` writes (the server does it, with progress and
   * cancellation), then adds it to the active file's target kernels. `path` and `name` skip the
   * file picker and the input boxes.
   */
  const importKernel = async (path?: string, name?: string, version?: string): Promise<boolean> => {
    await start();
    if (!path) {
      const picked = await vscode.window.showOpenDialog({
        title: 'Import Kernel BTF',
        openLabel: 'Import',
        canSelectMany: false,
        filters: { 'Kernel BTF (raw, vmlinux, .btf.tar.xz)': ['btf', 'xz', 'gz', 'tar', 'vmlinux'], 'All files': ['*'] },
      });
      if (!picked?.[0]) return false;
      path = picked[0].fsPath;
    }
    if (!name) {
      const d = await client!.sendRequest<{ name: string; version?: string }>('ebpfPortability/importDefaults', { path });
      name = await vscode.window.showInputBox({
        title: 'Import Kernel BTF: name',
        prompt: 'The kernel name to target it by',
        value: d.name,
        validateInput: (v) => (/^[A-Za-z0-9_.+~:-]+$/.test(v) ? undefined : 'Letters, digits and _ . + ~ : - only'),
      });
      if (!name) return false;
      version = await vscode.window.showInputBox({
        title: 'Import Kernel BTF: version',
        prompt: 'M.m or M.m.p; empty: estimated from the BTF (a lower bound)',
        value: d.version ?? '',
        validateInput: (v) => (v === '' || /^\d+\.\d+(\.\d+)?$/.test(v) ? undefined : 'A version such as 6.8 or 6.8.12'),
      });
      if (version === undefined) return false;
    }
    const params = { path, name, ...(version ? { version } : {}) };
    try {
      const meta = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Importing ${name}`, cancellable: true },
        (_progress, token) =>
          client!.sendRequest<{ name: string; version: string; arch: string }>('ebpfPortability/importKernel', params, token),
      );
      output.appendLine(`imported ${meta.name} (version ${meta.version}, ${meta.arch}) from ${path}`);
      const added = await addToTarget(meta.name);
      void vscode.window.showInformationMessage(
        `Imported ${meta.name} (${meta.version}, ${meta.arch})${added ? ' and added it to the target kernels' : ''}.`,
      );
      return true;
    } catch (e) {
      const err = e as { code?: number; message?: string };
      if (err.code === -32800) void vscode.window.showInformationMessage('Import cancelled: nothing was imported.');
      else void vscode.window.showErrorMessage(`Cannot import ${path}: ${err.message ?? e}`);
      return false;
    }
  };
  let machinePanel: vscode.WebviewPanel | undefined;
  const showMachine = async () => {
    await start();
    const m = await client!.sendRequest<MachineData | null>('ebpfPortability/doctor');
    if (!m) return;
    if (!machinePanel) {
      machinePanel = vscode.window.createWebviewPanel('ebpfPortability.machine', 'Check This Machine', vscode.ViewColumn.Active, {
        enableScripts: true,
        localResourceRoots: [],
      });
      machinePanel.onDidDispose(() => (machinePanel = undefined));
      machinePanel.webview.onDidReceiveMessage(async (msg: { type?: string }) => {
        const current = await client!.sendRequest<MachineData | null>('ebpfPortability/doctor');
        if (msg.type !== 'import' || !current?.btf) return;
        if (await importKernel(current.btf, current.name)) await showMachine();
      });
    } else machinePanel.reveal();
    machinePanel.webview.html = machineHtml(m, machinePanel.webview.cspSource);
  };

  context.subscriptions.push(
    vscode.commands.registerCommand('ebpfPortability.checkMachine', () => showMachine()),
    vscode.commands.registerCommand('ebpfPortability.importKernel', (path?: string, name?: string, version?: string) =>
      importKernel(typeof path === 'string' ? path : undefined, name, version),
    ),
    reportPanel,
    // The code lens passes the document and the program; the palette uses the active editor.
    vscode.commands.registerCommand('ebpfPortability.showReport', async (uri?: string | vscode.Uri, program?: string) => {
      const target = reportTarget(uri);
      if (!target) {
        void vscode.window.showInformationMessage('Open a BPF C program to see its portability report.');
        return;
      }
      await reportPanel.show(target, typeof program === 'string' ? program : undefined);
    }),
    // The report as the CLI's `requirements` prints it, saved where the user chooses.
    vscode.commands.registerCommand('ebpfPortability.exportReport', async (uri?: string | vscode.Uri) => {
      const target = reportTarget(uri);
      const r = target ? await requestReport(target) : null;
      if (!target || !r) {
        void vscode.window.showInformationMessage('Open a BPF C program to export its portability report.');
        return;
      }
      const name = `${target.path
        .split('/')
        .pop()!
        .replace(/(\.bpf)?\.c$/, '')}-portability.md`;
      const dest = await vscode.window.showSaveDialog({
        defaultUri: vscode.Uri.joinPath(target, '..', name),
        filters: { Markdown: ['md'] },
        title: 'Export Portability Report as Markdown',
      });
      if (!dest) return;
      await vscode.workspace.fs.writeFile(dest, new TextEncoder().encode(r.markdown));
      const pick = await vscode.window.showInformationMessage(
        `Saved the portability report to ${vscode.workspace.asRelativePath(dest)}.`,
        'Open',
      );
      if (pick) await vscode.window.showTextDocument(dest);
    }),
    vscode.commands.registerCommand('ebpfPortability.showOutput', () => output.show(true)),
    vscode.commands.registerCommand('ebpfPortability.restartServer', async () => {
      if (!client) return start();
      output.appendLine('restarting the language server');
      restarting = true;
      state = 'restarting';
      refresh();
      try {
        await client.restart();
      } finally {
        restarting = false;
      }
    }),
    vscode.commands.registerCommand('ebpfPortability.selectTarget', (preset?: string) => selectTarget(preset)),
    vscode.commands.registerCommand('ebpfPortability.showRuleDoc', (rule: string) => showRuleDoc(context, rule)),
    // A BCC program (C, or a Python tool) as a libbpf CO-RE .bpf.c, opened beside it, unsaved.
    vscode.commands.registerCommand('ebpfPortability.convertBcc', async () => {
      const doc = vscode.window.activeTextEditor?.document;
      if (!doc || !['c', 'python'].includes(doc.languageId)) {
        void vscode.window.showInformationMessage('Open a BCC program (a C file or a Python tool that imports bcc) to convert it.');
        return;
      }
      await start();
      const r = await client!.sendRequest<{ text: string; notes: string[] }>('ebpfPortability/convertBcc', { uri: doc.uri.toString() });
      for (const n of r.notes) output.appendLine(`convert to libbpf CO-RE: ${n}`);
      if (!r.text) {
        void vscode.window.showWarningMessage(`Cannot convert ${doc.fileName}: ${r.notes.join('; ')}`);
        return;
      }
      const converted = await vscode.workspace.openTextDocument({ language: 'c', content: r.text });
      await vscode.window.showTextDocument(converted, vscode.ViewColumn.Beside);
      if (r.notes.length) {
        const pick = await vscode.window.showInformationMessage(
          `Converted to libbpf CO-RE; ${r.notes.length} item${r.notes.length === 1 ? '' : 's'} to finish by hand.`,
          'Show Output',
        );
        if (pick) output.show(true);
      }
    }),
    vscode.workspace.onDidOpenTextDocument(track),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(SECTION)) refresh();
    }),
    vscode.window.onDidChangeActiveTextEditor(refresh),
    vscode.workspace.onDidCloseTextDocument((doc) => statuses.delete(doc.uri.toString())),
    // Trusted now: the settings (the object pass among them) apply in full.
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      void client?.sendNotification('workspace/didChangeConfiguration', { settings: null });
    }),
  );
  for (const doc of vscode.workspace.textDocuments) track(doc);
  refresh();
  return { statusItem: item, isBpf };
}

/** Stops the language server. */
export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

/** The documents the status item shows on: `*.bpf.c`/`.h`, and each other C file found to be BPF. */
function selectorFor(docs: ReadonlySet<string>): vscode.DocumentSelector {
  const exact = [...docs]
    .map((u) => vscode.Uri.parse(u))
    .filter((u) => u.scheme === 'file' && !/\.bpf\.(c|h)$/.test(u.path))
    .map((u) => ({ scheme: 'file', pattern: u.fsPath.replace(/[[\]{}*?]/g, '[$&]') }));
  return [{ scheme: 'file', pattern: '**/*.bpf.{c,h}' }, ...exact];
}

/** The item: the target and kernel count of the active document, the server's state, and what is wrong. */
function refreshStatus(
  item: vscode.LanguageStatusItem,
  statuses: Map<string, Status>,
  state: string,
  doc: vscode.TextDocument | undefined,
): void {
  const cfg = vscode.workspace.getConfiguration(SECTION, doc?.uri);
  const s = doc ? statuses.get(doc.uri.toString()) : undefined;
  const target = s?.target ?? cfg.get<string>('targetKernels', '');
  const archs = s?.architectures ?? cfg.get<string[]>('architectures', []);
  item.text = `eBPF ${target}${archs.length ? ` ${archs.join(',')}` : ''}${s ? ` · ${s.kernels} kernels` : ''}`;
  item.detail = s?.problems.length ? `settings problem: ${s.problems[0]}` : `server ${state}`;
  item.severity = s?.problems.length
    ? vscode.LanguageStatusSeverity.Warning
    : state === 'stopped'
      ? vscode.LanguageStatusSeverity.Error
      : vscode.LanguageStatusSeverity.Information;
  item.busy = state === 'starting' || state === 'restarting';
  item.command = s?.problems.length
    ? { title: 'Open Settings', command: 'workbench.action.openSettings', arguments: [SECTION] }
    : { title: 'Select Target', command: 'ebpfPortability.selectTarget' };
}

/** Problems with the settings, said once per distinct set, with an action that opens them. */
function reportProblems(problems: readonly string[]): void {
  const key = problems.join('\n');
  if (reported.has(key)) return;
  reported.add(key);
  void vscode.window.showWarningMessage(`eBPF Portability: ${problems.join('; ')}`, 'Open Settings').then((pick) => {
    if (pick) void vscode.commands.executeCommand('workbench.action.openSettings', SECTION);
  });
}
const reported = new Set<string>();

/** The quick pick's presets: what each writes into `targetKernels` (and `distros`); `all` is the setting's default. */
function presets(all: string): { label: string; description: string; target: string; distros?: string[] }[] {
  return [
    { label: 'All LTS and newer kernels', description: all, target: all },
    { label: 'Ring buffer era (5.8+)', description: '5.8+', target: '5.8+' },
    { label: 'BTF-era LTS (6.1+)', description: '6.1+', target: '6.1+' },
    { label: 'Debian kernels', description: 'distro debian', target: all, distros: ['debian'] },
    { label: 'Ubuntu kernels', description: 'distro ubuntu', target: all, distros: ['ubuntu'] },
    { label: 'RHEL / CentOS kernels', description: 'distro rhel', target: all, distros: ['rhel'] },
    { label: 'Imported kernels', description: 'user (ebpf-portability db add)', target: 'user' },
  ];
}

/** A target spec's shape, checked while typing (the server checks it against the kernel database). */
const SPEC_ITEM = /^(\*|user|\d+\.(\d+|x)(\.\d+)?(\+|-\d+\.(\d+|x)(\.\d+)?)?|(arch|distro)=[\w,]+|[A-Za-z0-9][\w.+~-]*)$/;

export function validateSpec(spec: string): string | undefined {
  const items = spec.split(/[\s,]+/).filter(Boolean);
  if (items.length === 0) return 'Enter a target, such as 5.8-7.x';
  const bad = items.find((i) => !SPEC_ITEM.test(i));
  return bad ? `"${bad}" is not a version (5.10), a range (4.14-7.x, 5.8+), *, user, or a kernel name` : undefined;
}

/**
 * Select Target Kernels: presets or a custom spec validated while typing, written where it
 * applies to the active file — its folder's settings when that folder sets it in a multi-root
 * workspace, else the workspace's (or the user's without a workspace).
 */
async function selectTarget(preset?: string): Promise<void> {
  const doc = vscode.window.activeTextEditor?.document;
  const cfg = vscode.workspace.getConfiguration(SECTION, doc?.uri);
  const PRESETS = presets(cfg.inspect<string>('targetKernels')?.defaultValue ?? '*');
  let choice: { target: string; distros?: string[] } | undefined = preset
    ? (PRESETS.find((p) => p.description === preset) ?? { target: preset })
    : undefined;
  if (!choice) {
    const current = cfg.get<string>('targetKernels', '');
    const picked = await vscode.window.showQuickPick(
      [
        ...PRESETS.map((p) => ({ ...p, picked: p.target === current && !p.distros })),
        { label: 'Custom…', description: 'a range, versions or kernel names', target: '' },
      ],
      { title: `Target kernels (now ${current})`, placeHolder: 'Kernels the program must load and read correctly on' },
    );
    if (!picked) return;
    if (picked.target) choice = picked;
    else {
      const typed = await vscode.window.showInputBox({
        title: 'Target kernels',
        prompt: 'A range such as 4.14-7.x or 5.8-7.x, a version (5.10), 5.8+, *, user, or kernel names',
        value: current,
        validateInput: validateSpec,
      });
      if (!typed) return;
      choice = { target: typed.trim() };
    }
  }
  const scope = targetScope(doc?.uri);
  await cfg.update('targetKernels', choice.target, scope);
  await cfg.update('distros', choice.distros ?? undefined, scope);
}

/**
 * Adds an imported kernel to the active file's target kernels (where Select Target writes);
 * false when the target names it, or `user`, already.
 */
async function addToTarget(name: string): Promise<boolean> {
  const uri = vscode.window.activeTextEditor?.document.uri;
  const cfg = vscode.workspace.getConfiguration(SECTION, uri);
  const current = cfg.get<string>('targetKernels', '');
  const items = current.split(/[\s,]+/).filter(Boolean);
  if (items.includes(name) || items.includes('user')) return false;
  await cfg.update('targetKernels', [...items, name].join(','), targetScope(uri));
  return true;
}

/** Where the target setting of `uri` lives: its folder's in a multi-root workspace when set there. */
function targetScope(uri: vscode.Uri | undefined): vscode.ConfigurationTarget {
  if (!vscode.workspace.workspaceFolders?.length) return vscode.ConfigurationTarget.Global;
  const inspect = uri ? vscode.workspace.getConfiguration(SECTION, uri).inspect('targetKernels') : undefined;
  if (vscode.workspace.workspaceFile && inspect?.workspaceFolderValue !== undefined) return vscode.ConfigurationTarget.WorkspaceFolder;
  return vscode.ConfigurationTarget.Workspace;
}

/** A rule's documentation, rendered (a markdown preview of the doc shipped with the extension). */
async function showRuleDoc(context: vscode.ExtensionContext, rule: string): Promise<void> {
  if (!/^[a-z0-9-]+$/.test(rule)) return;
  const doc = vscode.Uri.joinPath(context.extensionUri, 'docs', 'rules', `${rule}.md`);
  await vscode.commands.executeCommand('markdown.showPreview', doc);
}
