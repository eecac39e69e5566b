/**
 * The protocol edge: plain findings and fixes become LSP diagnostics, code actions and
 * workspace edits here, and only here.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CodeAction,
  CodeActionKind,
  type Diagnostic,
  DiagnosticSeverity,
  type Range as LspRange,
  type TextEdit as LspTextEdit,
  type WorkspaceEdit,
} from 'vscode-languageserver';
import { fixAllEdits } from '../analysis/fixall';
import type { Finding, Fix, Range, Severity } from '../analysis/model';

/** The code-action kind of "fix all" for this server. */
export const FIX_ALL_KIND = `${CodeActionKind.SourceFixAll}.ebpf-portability`;

/** Diagnostic `source`. */
export const SOURCE = 'ebpf-portability';

/** Where the rule docs are: beside the bundle (`dist/../docs/rules`) or the sources. */
function docsDir(): string | undefined {
  for (const rel of [
    ['..', 'docs', 'rules'],
    ['..', '..', '..', 'docs', 'rules'],
  ]) {
    const p = join(__dirname, ...rel);
    if (existsSync(p)) return p;
  }
  return undefined;
}
const DOCS = docsDir();

/** A link to a rule's documentation. */
export function ruleDocUrl(rule: string): string | undefined {
  return DOCS ? pathToFileURL(join(DOCS, `${rule}.md`)).toString() : undefined;
}

function severity(s: Severity): DiagnosticSeverity {
  return s === 'error' ? DiagnosticSeverity.Error : s === 'warning' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information;
}

/**
 * A finding as an LSP diagnostic; `data` keeps what code actions need and the failing kernels. The
 * message stays whole: editors list its first line (the headline) and show all of it on hover.
 */
export function toDiagnostic(f: Finding, uri: string): Diagnostic {
  const href = ruleDocUrl(f.rule);
  const d: Diagnostic = {
    range: f.range as LspRange,
    severity: severity(f.severity),
    code: f.rule,
    source: SOURCE,
    message: f.message,
    data: { kernels: f.kernels, ...(f.basis ? { basis: f.basis } : {}) },
  };
  if (href) d.codeDescription = { href };
  if (f.related?.length)
    d.relatedInformation = f.related.map((r) => ({ location: { uri, range: r.range as LspRange }, message: r.message }));
  return d;
}

/** A fix as a workspace edit on one document. */
export function toWorkspaceEdit(uri: string, version: number, edits: Fix['edits']): WorkspaceEdit {
  return {
    documentChanges: [
      { textDocument: { uri, version }, edits: edits.map((e) => ({ range: e.range as LspRange, newText: e.newText }) as LspTextEdit) },
    ],
  };
}

/** Quick fixes for the findings that touch `range`. */
export function quickFixes(uri: string, version: number, findings: readonly Finding[], range: Range): CodeAction[] {
  const out: CodeAction[] = [];
  for (const f of findings) {
    if (!overlaps(f.range, range)) continue;
    f.fixes.forEach((fix, i) => {
      const a = CodeAction.create(fix.title, toWorkspaceEdit(uri, version, fix.edits), CodeActionKind.QuickFix);
      a.diagnostics = [toDiagnostic(f, uri)];
      a.isPreferred = i === 0 && fix.safe;
      out.push(a);
    });
  }
  return out;
}

/** One action applying every safe fix that does not overlap an earlier one. */
export function fixAll(uri: string, version: number, findings: readonly Finding[]): CodeAction | undefined {
  const edits = fixAllEdits(findings);
  if (edits.length === 0) return undefined;
  return CodeAction.create('Fix all eBPF portability problems', toWorkspaceEdit(uri, version, edits), FIX_ALL_KIND);
}

function before(a: Range['start'], b: Range['start']): boolean {
  return a.line < b.line || (a.line === b.line && a.character < b.character);
}

function overlaps(a: Range, b: Range): boolean {
  return !before(a.end, b.start) && !before(b.end, a.start);
}
