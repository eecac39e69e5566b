/**
 * The VS Code extension: starts the bundled language server for C files (the server itself
 * decides which files are BPF programs) and shows the target kernels in the status bar.
 * This is the only code that imports `vscode`.
 */
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';

let client: LanguageClient | undefined;

/** Activates the extension. */
export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const module = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6011'] } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'c' },
      { scheme: 'untitled', language: 'c' },
      { scheme: 'file', pattern: '**/*.bpf.c' },
    ],
    synchronize: {
      configurationSection: 'ebpfPortability',
      // Headers, user-space loaders and project files the analysis reads from disk.
      fileEvents: vscode.workspace.createFileSystemWatcher('**/{*.h,*.c,.ebpf-portability.json,compile_commands.json,compile_flags.txt}'),
    },
  };
  client = new LanguageClient('ebpfPortability', 'eBPF Portability', serverOptions, clientOptions);
  context.subscriptions.push(statusBar(context));
  await client.start();
}

/** Stops the language server. */
export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

/** The status-bar item: shows the target kernels; clicking it changes them. */
function statusBar(context: vscode.ExtensionContext): vscode.Disposable {
  const item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  item.command = 'ebpfPortability.selectTarget';
  const refresh = () => {
    const cfg = vscode.workspace.getConfiguration('ebpfPortability');
    const archs = cfg.get<string[]>('architectures', []);
    item.text = `$(server-environment) eBPF ${cfg.get<string>('targetKernels') ?? ''}${archs.length ? ` ${archs.join(',')}` : ''}`;
    item.tooltip = 'eBPF portability: target kernels (click to change)';
    const editor = vscode.window.activeTextEditor;
    if (editor && editor.document.languageId === 'c') item.show();
    else item.hide();
  };
  context.subscriptions.push(
    vscode.commands.registerCommand('ebpfPortability.selectTarget', async () => {
      const cfg = vscode.workspace.getConfiguration('ebpfPortability');
      const value = await vscode.window.showInputBox({
        title: 'Target kernels',
        prompt: 'A range such as 4.14-7.x or 5.8-7.x, a version (5.10), 5.8+, *, or kernel names',
        value: cfg.get<string>('targetKernels') ?? '',
      });
      if (value !== undefined && value.trim() !== '') {
        const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
        await cfg.update('targetKernels', value.trim(), target);
      }
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('ebpfPortability')) refresh();
    }),
    vscode.window.onDidChangeActiveTextEditor(refresh),
  );
  refresh();
  return item;
}
