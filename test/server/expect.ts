/**
 * Inline expectations for rule tests: a comment line of carets under the flagged text names the
 * rule (and optionally words its message must contain). The snippet stays valid C.
 *
 *     u32 ppid = task->real_parent->tgid;
 *             // ^^^^^^^^^^^^^^^^^^^^^^^^ unsafe-kernel-deref: reads struct task_struct
 *
 * Carets count characters, so snippets use spaces (not tabs) for indentation.
 */
import assert from 'node:assert/strict';
import { KernelDb } from '../../kernel-db/src/query/db';
import { applyEdits } from '../../server/src/analysis/fixall';
import { Engine } from '../../server/src/driver/engine';
import { loadCParser } from '../../server/src/parse/documents';
import { DEFAULT_SETTINGS, type Settings } from '../../server/src/driver/settings';
import { type Finding, HEADLINE_MAX, headlineOf } from '../../server/src/analysis/model';

export { applyEdits };

/** One expected finding. */
export interface Expected {
  readonly rule: string;
  readonly line: number;
  readonly start: number;
  readonly end: number;
  readonly words?: string;
}

const MARKER = /^(\s*\/\/\s*)(\^+)\s+([a-z0-9-]+)(?::\s*(.*))?$/;

/** Reads the caret markers of a snippet. */
export function expectations(code: string): Expected[] {
  const lines = code.split('\n');
  const out: Expected[] = [];
  let target = -1;
  lines.forEach((l, i) => {
    const m = MARKER.exec(l);
    if (!m) {
      target = i;
      return;
    }
    assert.ok(target >= 0, `marker on line ${i + 1} has no code line above it`);
    const start = l.indexOf('^');
    out.push({ rule: m[3], line: target, start, end: start + m[2].length, ...(m[4] ? { words: m[4].trim() } : {}) });
  });
  return out;
}

/** Asserts that `findings` are exactly the expected ones (rule and range), with the words. */
export function assertFindings(code: string, findings: readonly Finding[], label = ''): void {
  const want = expectations(code);
  const got = findings.map((f) => ({
    rule: f.rule,
    line: f.range.start.line,
    start: f.range.start.character,
    end: f.range.end.line === f.range.start.line ? f.range.end.character : -1,
    message: f.message,
  }));
  const fmt = (x: { rule: string; line: number; start: number; end: number }) => `${x.rule}@${x.line + 1}:${x.start}-${x.end}`;
  assert.deepEqual(got.map(fmt).sort(), want.map(fmt).sort(), `${label}\nfindings: ${JSON.stringify(got, null, 1)}`);
  for (const w of want) {
    if (!w.words) continue;
    const f = got.find((g) => g.rule === w.rule && g.line === w.line && g.start === w.start);
    assert.ok(f && f.message.includes(w.words), `${label}: message of ${fmt(w)} should contain "${w.words}", got "${f?.message}"`);
  }
}

/** Applies a finding's first fix to the text (edits sorted from the end). */
export function applyFix(code: string, f: Finding, index = 0): string {
  const fix = f.fixes[index];
  assert.ok(fix, `finding ${f.rule} at line ${f.range.start.line + 1} has a fix`);
  return applyEdits(code, fix.edits);
}

/** The built-in kernel database, opened once for every snippet test. */
export const builtinDb = KernelDb.open({ noUser: true });
const engines = new WeakMap<KernelDb, Engine>();

/**
 * Analyses a snippet as the server analyses a document (default settings, so 4.14-7.x on x86_64
 * and arm64) and returns its findings — only those of `rules`, when given.
 */
export async function analyzeSnippet(
  code: string,
  opts: { rules?: readonly string[]; settings?: Partial<Settings>; uri?: string; db?: KernelDb } = {},
): Promise<Finding[]> {
  const parser = await loadCParser();
  const db = opts.db ?? builtinDb;
  // Rule tests judge results, not time: a busy machine must not turn a slow parse into a failure.
  const parse = (t: string) => parser.parseText(t, { timeoutMs: 60_000 });
  let engine = engines.get(db);
  if (!engine) {
    engine = new Engine(db, parse);
    engines.set(db, engine);
  }
  const tree = parse(code);
  assert.ok(tree, 'snippet parses');
  try {
    const result = engine.analyzeDocument(opts.uri ?? 'file:///snippets/snippet.bpf.c', code, tree, {
      ...DEFAULT_SETTINGS,
      ...opts.settings,
    });
    // A rule that throws loses its findings quietly in a result: in a test that is a failure.
    assert.deepEqual(
      result.failures.map((f) => `${f.rule ?? 'analysis'}: ${f.message}`),
      [],
      'nothing in the analysis threw',
    );
    const findings = result.findings;
    // Every message opens with a headline that fits an editor's problem list.
    for (const f of findings)
      assert.ok(
        headlineOf(f.message).length <= HEADLINE_MAX,
        `${f.rule}: headline over ${HEADLINE_MAX} characters: ${headlineOf(f.message)}`,
      );
    return opts.rules ? findings.filter((f) => opts.rules!.includes(f.rule)) : findings;
  } finally {
    tree.delete();
  }
}
