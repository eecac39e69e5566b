/**
 * The Show Portability Report command's panel: one webview beside the editor showing the report
 * of one BPF document (client/src/report.ts renders it), re-asked from the server when that
 * document's diagnostics change (each edit, the object pass, a settings change) and redrawn when
 * the answer differs; its "Export as Markdown" button runs the export command, and a program's
 * name reveals its SEC() line.
 */
import * as vscode from 'vscode';
import { type ReportData, reportHtml } from './report';

export class ReportPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private uri: vscode.Uri | undefined;
  private focus: string | undefined;
  private shown: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly request: (uri: vscode.Uri) => Promise<ReportData | null>) {
    this.subscriptions.push(
      vscode.languages.onDidChangeDiagnostics((e) => {
        if (this.panel && this.uri && e.uris.some((u) => u.toString() === this.uri!.toString())) this.refreshSoon();
      }),
    );
  }

  /** The document the panel reports on, if it is open. */
  get document(): vscode.Uri | undefined {
    return this.panel ? this.uri : undefined;
  }

  /** Shows the report of `uri` (focusing the program `focus`), creating or revealing the panel. */
  async show(uri: vscode.Uri, focus?: string): Promise<void> {
    this.uri = uri;
    this.focus = focus;
    this.shown = undefined;
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel(
        'ebpfPortability.report',
        this.title(),
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, localResourceRoots: [], retainContextWhenHidden: false },
      );
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        if (this.timer) clearTimeout(this.timer);
      });
      this.panel.webview.onDidReceiveMessage((m: { type?: string; line?: number }) => {
        if (!this.uri) return;
        if (m.type === 'export') void vscode.commands.executeCommand('ebpfPortability.exportReport', this.uri.toString());
        else if (m.type === 'reveal' && typeof m.line === 'number') {
          const pos = new vscode.Position(m.line, 0);
          void vscode.window.showTextDocument(this.uri, { selection: new vscode.Range(pos, pos), viewColumn: vscode.ViewColumn.One });
        }
      });
    } else this.panel.reveal(undefined, true);
    this.panel.title = this.title();
    await this.render();
  }

  private title(): string {
    return `Portability Report: ${this.uri?.path.split('/').pop() ?? ''}`;
  }

  private refreshSoon(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.render(), 300);
  }

  private async render(): Promise<void> {
    const panel = this.panel;
    const uri = this.uri;
    if (!panel || !uri) return;
    let r: ReportData | null;
    try {
      r = await this.request(uri);
    } catch {
      r = null;
    }
    // Redrawn only when the answer changed: a redraw loses the keyboard focus in the grid.
    const key = JSON.stringify(r);
    if (this.panel !== panel || this.uri !== uri || key === this.shown) return;
    this.shown = key;
    panel.webview.html = reportHtml(r, this.title(), panel.webview.cspSource, this.focus);
  }

  dispose(): void {
    this.panel?.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}
