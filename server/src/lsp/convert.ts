/**
 * The protocol edge: plain findings and fixes become LSP diagnostics, code actions and
 * workspace edits here, and only here.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CodeAction, Diagnostic, Range as LspRange, TextEdit as LspTextEdit, WorkspaceEdit } from 'vscode-languageserver';
import { CodeActionKind, codeAction, DiagnosticSeverity, DiagnosticTag } from './protocol';
import { fixAllEdits } from '../analysis/fixall';
import { OwnedValue } from '../analysis/memo';
import type { Finding, Fix, Range, Severity } from '../analysis/model';

/** The code-action kind of "fix all" for this server. */
export const FIX_ALL_KIND = `${CodeActionKind.SourceFixAll}.ebpf-portability`;

/** Diagnostic `source`. */
export const SOURCE = 'ebpf-portability';

/**
 * The client command that shows a rule's documentation rendered (the VS Code extension registers
 * it and says so in `initializationOptions.showRuleDocCommand`); other clients follow the
 * diagnostic's documentation link.
 */
export const SHOW_RULE_DOC = 'ebpfPortability.showRuleDoc';

/** Rules whose findings are about a deprecated construct (shown struck through). */
const DEPRECATED = new Set(['legacy-probe-read']);

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
  if (!DOCS) return undefined;
  // Asked for every diagnostic of every publish: rule ids need no escaping, so the folder's URL
  // is built once (a URL object per diagnostic was a millisecond of each edit of a large file).
  return /^[a-z0-9-]+$/.test(rule) ? `${DOCS_URL}/${rule}.md` : pathToFileURL(join(DOCS, `${rule}.md`)).toString();
}
const DOCS_URL = DOCS ? pathToFileURL(DOCS).toString().replace(/\/$/, '') : '';

function severity(s: Severity): Diagnostic['severity'] {
  return s === 'error' ? DiagnosticSeverity.Error : s === 'warning' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information;
}

/**
 * A finding as an LSP diagnostic. The message stays whole: editors list its first line (the
 * headline) and show all of it on hover, and it says which kernels fail. `data.failing` counts
 * them; their names are in the portability report (`ebpfPortability/report`) and the CLI's JSON:
 * naming them in every diagnostic was two thirds of each publish of a large file (700 KB for 316
 * findings), sent again on every keystroke.
 */
export function toDiagnostic(f: Finding, uri: string): Diagnostic {
  const href = ruleDocUrl(f.rule);
  const d: Diagnostic = {
    range: f.range as LspRange,
    severity: severity(f.severity),
    code: f.rule,
    source: SOURCE,
    message: f.message,
    data: { failing: f.kernels.length, ...(f.basis ? { basis: f.basis } : {}) },
  };
  if (href) d.codeDescription = { href };
  if (DEPRECATED.has(f.rule)) d.tags = [DiagnosticTag.Deprecated];
  if (f.related?.length)
    d.relatedInformation = f.related.map((r) => ({ location: { uri, range: r.range as LspRange }, message: r.message }));
  return d;
}

/**
 * {@link toDiagnostic}, once per finding: an edit's analysis hands back the findings of the
 * functions it did not analyse again as the same objects, so each publish converts only the
 * findings that are new.
 */
export function publishedDiagnostic(f: Finding, uri: string): Diagnostic {
  const kept = diagnostics.get(f, () => ({ uri, diagnostic: toDiagnostic(f, uri) }));
  return kept.uri === uri ? kept.diagnostic : toDiagnostic(f, uri);
}

/**
 * The most diagnostics one publish holds, the summary of those left out included: VS Code's own
 * limit per file (its extension host keeps 1,000 of a file's diagnostics, errors first, and drops
 * the rest after it has read them all). Every client gets the same: a pathological file (30,000
 * nested reads) had every keystroke send ~20 MB that VS Code then threw away, and a list past a
 * thousand is no reading for anyone; the CLI lists them all, and code actions see them all.
 */
export const MAX_PUBLISHED = 1000;

const RANK: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/**
 * The diagnostics of a publish: every finding's while they fit in `max`; otherwise `max - 1` of
 * them, chosen as VS Code chooses (errors, then warnings, then the rest, each in the document's
 * order) and kept in the document's order, then one information diagnostic at the first finding
 * left out that says how many are and where to see them all.
 */
export function publishedDiagnostics(
  findings: readonly Finding[],
  uri: string,
  max = MAX_PUBLISHED,
): { diagnostics: Diagnostic[]; omitted: number } {
  if (findings.length <= max) return { diagnostics: findings.map((f) => publishedDiagnostic(f, uri)), omitted: 0 };
  const room = Math.max(0, max - 1);
  const counts = [0, 0, 0];
  for (const f of findings) counts[RANK[f.severity]]++;
  // The lowest rank that is shown, and how many of it fit after the ranks above it.
  let last = 0;
  let left = room;
  while (last < 2 && counts[last] < left) left -= counts[last++];
  const diagnostics: Diagnostic[] = [];
  let firstOut: Finding | undefined;
  for (const f of findings) {
    const r = RANK[f.severity];
    if (r < last || (r === last && left-- > 0)) diagnostics.push(publishedDiagnostic(f, uri));
    else firstOut ??= f;
  }
  const omitted = findings.length - diagnostics.length;
  // Where the first left out starts (its whole range could span lines of code).
  const at = firstOut!.range.start;
  diagnostics.push({
    range: { start: at, end: at },
    severity: DiagnosticSeverity.Information,
    source: SOURCE,
    // The line takes a place, so at least two are left out: never "1 more".
    message: `${omitted.toLocaleString('en-US')} more findings are not shown here, the first of them at this line: an editor is sent at most ${max.toLocaleString('en-US')} a file, errors first. \`ebpf-portability check\` on this file lists them all.`,
  });
  return { diagnostics, omitted };
}

const diagnostics = new OwnedValue<Finding, { readonly uri: string; readonly diagnostic: Diagnostic }>({
  name: 'convert.diagnostic',
  owner: 'a finding (immutable once reported)',
  key: '— (the document it was published for is checked)',
});

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
      const a = codeAction(fix.title, toWorkspaceEdit(uri, version, fix.edits), CodeActionKind.QuickFix);
      a.diagnostics = [toDiagnostic(f, uri)];
      a.isPreferred = i === 0 && fix.safe;
      out.push(a);
    });
  }
  return out;
}

/**
 * "Disable <rule> for this line" (a `// ebpf-portability-disable-next-line <rule>` comment above
 * the finding's line, or the rule added to one already there) and "Show documentation" for each
 * rule with a finding that touches `range`. Only in C files (the comment is C's).
 */
export function ruleActions(
  uri: string,
  version: number,
  text: string,
  findings: readonly Finding[],
  range: Range,
  showDoc: boolean,
): CodeAction[] {
  const out: CodeAction[] = [];
  if (!/\.(c|h)$/i.test(uri)) return out;
  const lines = text.split(/\r?\n/);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const seen = new Set<string>();
  for (const f of findings) {
    if (!overlaps(f.range, range)) continue;
    const key = `${f.rule}:${f.range.start.line}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const line = f.range.start.line;
    const above = line > 0 ? lines[line - 1] : undefined;
    const existing = above !== undefined ? /^(\s*\/\/\s*ebpf-portability-disable-next-line\b)(.*)$/.exec(above) : null;
    let edit: LspTextEdit;
    if (existing && existing[2].trim() !== '') {
      // Add the rule to the comment above (a comment naming no rule silences every rule already).
      const end = { line: line - 1, character: above!.length };
      edit = { range: { start: end, end }, newText: `, ${f.rule}` };
    } else if (existing) {
      continue;
    } else {
      const indent = /^\s*/.exec(lines[line] ?? '')![0];
      const at = { line, character: 0 };
      edit = { range: { start: at, end: at }, newText: `${indent}// ebpf-portability-disable-next-line ${f.rule}${eol}` };
    }
    const a = codeAction(
      `Disable ${f.rule} for this line`,
      { documentChanges: [{ textDocument: { uri, version }, edits: [edit] }] },
      CodeActionKind.QuickFix,
    );
    a.diagnostics = [toDiagnostic(f, uri)];
    out.push(a);
  }
  if (showDoc)
    for (const rule of new Set(findings.filter((f) => overlaps(f.range, range)).map((f) => f.rule)))
      out.push(
        codeAction(
          `Show documentation for ${rule}`,
          { title: `Show documentation for ${rule}`, command: SHOW_RULE_DOC, arguments: [rule] },
          CodeActionKind.QuickFix,
        ),
      );
  return out;
}

/** One action applying every safe fix that does not overlap an earlier one. */
export function fixAll(uri: string, version: number, findings: readonly Finding[]): CodeAction | undefined {
  const edits = fixAllEdits(findings);
  if (edits.length === 0) return undefined;
  return codeAction('Fix all eBPF portability problems', toWorkspaceEdit(uri, version, edits), FIX_ALL_KIND);
}

function before(a: Range['start'], b: Range['start']): boolean {
  return a.line < b.line || (a.line === b.line && a.character < b.character);
}

function overlaps(a: Range, b: Range): boolean {
  return !before(a.end, b.start) && !before(b.end, a.start);
}
