/**
 * `npm run corpus`: the linter over the real programs of ../shared/corpus, each project as its own
 * build sees it, as a user would run it (`ebpf-portability check` on the project's directory).
 * Prints, per project and rule, the findings and the files they are in; with test/corpus/triage.json,
 * how many findings are triaged true or false and which are not triaged yet.
 *
 * Usage: npm run corpus [-- --json] [-- --untriaged] [-- --false] [-- --stale] [-- --prune]
 * (`--stale` lists verdicts of findings no longer printed; `--prune` removes them from the file)
 * Exit status: 0, also when the corpus is absent (it says so); 1 when a project cannot be checked.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { HEADLINE_MAX, headlineOf, headlineProblem } from '../../server/src/analysis/model';

const root = join(import.meta.dirname, '..', '..');
const corpus = process.env.EBPF_CORPUS ?? join(root, '..', 'shared', 'corpus');

/**
 * The projects, their builds and their loaders as the check can use them: every one compiles
 * with `-D__TARGET_ARCH_x86` (../shared/corpus/README.md), so its objects are x86-64 objects,
 * and with its own include paths (`-I`, relative to the corpus; the `<arch>/` directories that
 * hold only a generated vmlinux.h are not in the corpus); libbpf-tools and libbpf-bootstrap load
 * with libbpf, Inspektor Gadget with cilium/ebpf (its own section conventions: `socket1`,
 * `classifier/…`, `perf_event/…`).
 */
export const PROJECTS = [
  { name: 'libbpf-tools', dir: 'bcc/libbpf-tools', include: ['bcc/libbpf-tools'], loader: 'libbpf' },
  { name: 'libbpf-bootstrap', dir: 'libbpf-bootstrap/examples/c', include: ['libbpf-bootstrap/examples/c'], loader: 'libbpf' },
  { name: 'inspektor-gadget', dir: 'inspektor-gadget/gadgets', include: ['inspektor-gadget/include'], loader: 'cilium/ebpf' },
  { name: 'bcc-tools', dir: 'bcc/tools', include: [], loader: 'bcc' },
] as const;

/**
 * One triaged finding: where, which rule, the severity it was judged at (a finding whose severity
 * changes is judged again), and the verdict with its evidence.
 */
export interface TriageEntry {
  readonly file: string;
  readonly line: number;
  readonly rule: string;
  readonly severity: 'error' | 'warning';
  readonly verdict: 'true' | 'false';
  readonly evidence: string;
}

interface Diagnostic {
  readonly rule: string;
  readonly severity: string;
  readonly message: string;
  readonly range: { start: { line: number } };
}

/** The key a finding is triaged under: its file (relative to the corpus), line, rule and severity. */
export function triageKey(file: string, line: number, rule: string, severity: string): string {
  return `${file}:${line} ${rule} ${severity}`;
}

function main(): number {
  const args = new Set(process.argv.slice(2));
  if (!existsSync(corpus)) {
    console.log(`corpus: skipped: ${corpus} is absent (set EBPF_CORPUS to a checkout of the corpus)`);
    return 0;
  }
  const cli = join(root, 'bin', 'ebpf-portability.js');
  if (!existsSync(join(root, 'dist', 'cli.js'))) {
    console.error('corpus: dist/cli.js is missing; run `npm run build` first');
    return 1;
  }
  const triagePath = join(root, 'test', 'corpus', 'triage.json');
  const triage = existsSync(triagePath) ? (JSON.parse(readFileSync(triagePath, 'utf8')) as TriageEntry[]) : undefined;
  const verdicts = new Map((triage ?? []).map((t) => [triageKey(t.file, t.line, t.rule, t.severity), t.verdict]));
  const report: Record<string, unknown> = {};
  const untriaged: string[] = [];
  /** Findings whose first line is over the headline limit or was cut to fit it. */
  const headlines: string[] = [];
  /** Printed findings triaged false: what is still to fix. */
  const falses: string[] = [];
  /** Every printed error and warning, by triage key. */
  const printed = new Set<string>();
  /** Projects checked (a verdict of a project that was skipped is not stale). */
  const checked = new Set<string>();
  let failed = 0;
  for (const p of PROJECTS) {
    const dir = join(corpus, p.dir);
    if (!existsSync(dir)) {
      console.log(`${p.name}: skipped: ${dir} is absent`);
      continue;
    }
    const flags = ['-D__TARGET_ARCH_x86', ...p.include.map((d) => `-I${join(corpus, d)}`)];
    const r = spawnSync(
      process.execPath,
      [cli, 'check', dir, ...flags.flatMap((f) => [f.slice(0, 2), f.slice(2)]), '--loader', p.loader, '--format', 'json'],
      {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    if (r.status !== 0 && r.status !== 1) {
      console.error(`${p.name}: check failed (${r.status}): ${r.stderr.trim()}`);
      failed++;
      continue;
    }
    checked.add(p.name);
    const out = JSON.parse(r.stdout) as { files: { path: string; diagnostics?: Diagnostic[] }[] };
    const byRule = new Map<string, { error: number; warning: number; info: number; files: Set<string>; true: number; false: number }>();
    for (const f of out.files) {
      const file = relative(corpus, join(root, f.path));
      for (const d of f.diagnostics ?? []) {
        const problem = headlineProblem(d.message);
        if (problem) headlines.push(`${triageKey(file, d.range.start.line + 1, d.rule, d.severity)}: ${problem}: ${headlineOf(d.message)}`);
        let e = byRule.get(d.rule);
        if (!e) byRule.set(d.rule, (e = { error: 0, warning: 0, info: 0, files: new Set(), true: 0, false: 0 }));
        e[d.severity as 'error' | 'warning' | 'info']++;
        e.files.add(file);
        if (d.severity === 'info') continue;
        const key = triageKey(file, d.range.start.line + 1, d.rule, d.severity);
        printed.add(key);
        const v = verdicts.get(key);
        if (v) e[v]++;
        else untriaged.push(`${key}: ${d.message.slice(0, 160)}`);
        if (v === 'false') falses.push(key);
      }
    }
    const rows = [...byRule].sort(([a], [b]) => (a < b ? -1 : 1));
    report[p.name] = {
      files: out.files.length,
      rules: Object.fromEntries(
        rows.map(([rule, e]) => [
          rule,
          { error: e.error, warning: e.warning, info: e.info, files: e.files.size, true: e.true, false: e.false },
        ]),
      ),
    };
    if (!args.has('--json')) {
      console.log(
        `\n${p.name}: ${out.files.length} files (${p.dir}, ${flags.map((f) => (relative(corpus, f.slice(2)) && f.startsWith('-I') ? `-I ${relative(corpus, f.slice(2))}` : f)).join(' ')} --loader ${p.loader})`,
      );
      console.log(
        `  ${'rule'.padEnd(34)} ${'error'.padStart(5)} ${'warn'.padStart(5)} ${'info'.padStart(5)} ${'files'.padStart(5)}${triage ? `  ${'true'.padStart(5)} ${'false'.padStart(5)}` : ''}`,
      );
      for (const [rule, e] of rows) {
        const t = triage ? `  ${String(e.true).padStart(5)} ${String(e.false).padStart(5)}` : '';
        console.log(
          `  ${rule.padEnd(34)} ${String(e.error).padStart(5)} ${String(e.warning).padStart(5)} ${String(e.info).padStart(5)} ${String(e.files.size).padStart(5)}${t}`,
        );
      }
    }
  }
  const stale = (triage ?? [])
    .filter((t) => PROJECTS.some((p) => checked.has(p.name) && t.file.startsWith(`${p.dir}/`)))
    .map((t) => triageKey(t.file, t.line, t.rule, t.severity))
    .filter((k) => !printed.has(k));
  if (args.has('--prune') && triage && stale.length) {
    const gone = new Set(stale);
    const kept = triage.filter((t) => !gone.has(triageKey(t.file, t.line, t.rule, t.severity)));
    writeFileSync(triagePath, `[\n${kept.map((e) => JSON.stringify(e)).join(',\n')}\n]\n`);
  }
  if (args.has('--json')) console.log(JSON.stringify({ projects: report, untriaged, false: falses, headlines, stale }, null, 2));
  else {
    console.log(
      `\ncorpus: ${untriaged.length} error/warning finding(s) not in test/corpus/triage.json${triage ? '' : ' (no triage file yet)'}`,
    );
    if (args.has('--untriaged')) for (const u of untriaged) console.log(`  ${u}`);
    console.log(`corpus: ${falses.length} printed finding(s) triaged false (${falses.filter((k) => k.endsWith(' error')).length} errors)`);
    if (args.has('--false')) for (const f of falses) console.log(`  ${f}`);
    console.log(`corpus: ${headlines.length} finding(s) whose first line is over ${HEADLINE_MAX} characters or cut to fit`);
    for (const h of headlines) console.log(`  ${h}`);
    console.log(
      `corpus: ${stale.length} verdict(s) of findings no longer printed${args.has('--prune') && stale.length ? ' (removed)' : ''}`,
    );
    if (args.has('--stale')) for (const k of stale) console.log(`  ${k}`);
  }
  return failed ? 1 : 0;
}

process.exit(main());
