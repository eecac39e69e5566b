/**
 * LSP's constants the server sends (values from the LSP 3.17 specification), and the one builder
 * it needs. The types come from `vscode-languageserver` as types only: nothing of it is bundled.
 */
import type { CodeAction, CodeActionKind as Kind, Command, WorkspaceEdit } from 'vscode-languageserver';

export const CodeActionKind = { QuickFix: 'quickfix', SourceFixAll: 'source.fixAll' } as const satisfies Record<string, Kind>;
export const DiagnosticSeverity = { Error: 1, Warning: 2, Information: 3, Hint: 4 } as const;
export const DiagnosticTag = { Unnecessary: 1, Deprecated: 2 } as const;
export const MarkupKind = { PlainText: 'plaintext', Markdown: 'markdown' } as const;
export const TextDocumentSyncKind = { None: 0, Full: 1, Incremental: 2 } as const;

/** A code action that applies `edit`, or runs `command`. */
export function codeAction(title: string, action: WorkspaceEdit | Command, kind: string): CodeAction {
  return 'command' in action && typeof action.command === 'string'
    ? { title, command: action, kind }
    : { title, edit: action as WorkspaceEdit, kind };
}
