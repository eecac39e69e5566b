/**
 * `ebpf-portability check <files|dirs…>`: the language server's analysis for CI. Compiler-style
 * text, JSON (docs/cli-json.md) or SARIF 2.1.0 output; exit status 1 when an error-severity
 * finding exists (or more warnings than `--max-warnings`), 2 for bad usage, unreadable input or
 * no input file at all.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Kernel, KernelDb } from '../../kernel-db/src/query/db';
import { versionRanges } from '../../kernel-db/src/query/summary';
import { applyEditsToBytes, decodeSource, fixAllEdits } from '../../server/src/analysis/fixall';
import { readBoundedBytes, replaceFileAtomic } from '../../kernel-db/src/files';
import type { AnalysisFailure } from '../../server/src/driver/analyze';
import type { DocumentResult } from '../../server/src/driver/engine';
import { detailsOf, type Finding, headlineOf } from '../../server/src/analysis/model';
import { Engine } from '../../server/src/driver/engine';
import { DEFAULT_PARSE_LIMITS, loadCParser } from '../../server/src/parse/documents';
import { unanalysable } from '../../server/src/parse/inputLimits';
import { parseLoader } from '../../server/src/analysis/loader';
import { DEFAULT_SETTINGS, RULE_IDS, type Settings, validateSettings } from '../../server/src/driver/settings';
import type { SettingKey } from '../../server/src/driver/engine';
import { CONFIG_FILE } from '../../server/src/driver/project';
import { clangMajor, findClang, MIN_CLANG } from '../../server/src/driver/compile';
import { objectPass } from '../../server/src/driver/objectPass';
import { type ArgSpec, type Args, parseArgs, UsageError } from './args';
import type { Io } from './db';
import { collectInputs, MAX_FILE_BYTES, noInputError, targetKernels } from './inputs';
import { sarifLog } from './sarif';
import { byteColumn, excerpt, style } from './style';

/** The options `check` and `requirements` share, for their usage texts. */
export const ANALYSIS_OPTIONS = `  --target SPEC         target kernels (default "${DEFAULT_SETTINGS.targetKernels}"): "5.8-7.x", "5.10", "*", names, "user"
  --arch LIST           only these architectures (default ${DEFAULT_SETTINGS.architectures.join(',')}; "*" for all)
  --distro LIST         only these distro families, e.g. debian,ubuntu
  --rules ID=SEV[,…]    override rules' severities (error, warning, info, off); also --rule, repeatable
  --loader L            libbpf (default), libbpf>=1.3, cilium/ebpf or bcc
  -I DIR                add an include directory (after the project's own); repeatable
  -D NAME[=VALUE]       define a macro as the build does; repeatable
  --compile-commands F  the compilation database to take each file's flags from (default: the
                        nearest compile_commands.json or compile_flags.txt above the file)
  --config F            the project configuration to use (default: the nearest ${CONFIG_FILE})
  --no-config           ignore project configuration files
  --no-compile          do not compile: check the source only (the default when clang is found
                        is to also compile each file as its project does and check the object:
                        CO-RE relocations resolved per kernel, guards followed in the
                        instructions; member and type findings then come from the object)
  --compile             require the object pass (exit 2 when clang is not found)
  --clang PATH          the clang to compile with (default: clang on PATH)
Options given here win over the project configuration file; it wins over the defaults.
Directories are searched for *.bpf.c files and C files that look like BPF programs (BPF headers,
SEC(), BCC macros), skipping hidden folders, node_modules and what .gitignore files ignore.`;

const USAGE = `usage: ebpf-portability check <files|dirs…> [options]

Checks BPF C files against the target kernels.

options:
  --format F            text (default; compiler-style, colour on a terminal), json or sarif
  --max-warnings N      also fail (exit 1) when there are more than N warnings
  --fix                 apply every safe fix in place (BPF_CORE_READ rewrites, attributes, includes)
${ANALYSIS_OPTIONS}

exit status: 0 no error findings, 1 error findings (or more warnings than --max-warnings),
             2 bad usage, unreadable input or no BPF C file found
`;

/** The argument spec of the analysis options; a command adds its own. */
export const ANALYSIS_SPEC = {
  valued: ['target', 'data', 'user-dir', 'loader', 'compile-commands', 'config', 'clang'],
  lists: ['arch', 'distro', 'rule', 'rules'],
  repeated: ['include-dir', 'define'],
  flags: ['help', 'no-config', 'compile', 'no-compile'],
  short: { I: 'include-dir', D: 'define' },
} as const;

/** Joins the analysis spec with a command's own options. */
export function withAnalysisSpec(own: ArgSpec): ArgSpec {
  return {
    valued: [...ANALYSIS_SPEC.valued, ...(own.valued ?? [])],
    lists: [...ANALYSIS_SPEC.lists, ...(own.lists ?? [])],
    repeated: [...ANALYSIS_SPEC.repeated, ...(own.repeated ?? [])],
    flags: [...ANALYSIS_SPEC.flags, ...(own.flags ?? [])],
    short: { ...ANALYSIS_SPEC.short, ...(own.short ?? {}) },
  };
}

/** Everything an analysis run needs, validated from the options. */
export interface AnalysisSetup {
  readonly db: KernelDb;
  readonly settings: Settings;
  readonly pinned: ReadonlySet<SettingKey>;
  readonly kernels: readonly Kernel[];
  readonly engineOptions: ConstructorParameters<typeof Engine>[2];
  /** The clang of the object pass, when it runs. */
  readonly clang?: string;
  /** Why the object pass does not run, when it does not. */
  readonly noClang?: string;
}

/** Validates the analysis options (a usage error names what is wrong) and opens the database. */
export function analysisSetup(args: Args): AnalysisSetup {
  const rules: Record<string, string> = {};
  for (const r of [...(args.list('rule') ?? []), ...(args.list('rules') ?? [])]) {
    const m = /^([a-z0-9-]+)=(error|warning|info|off)$/.exec(r);
    if (!m) throw new UsageError(`--rules expects ID=SEVERITY (severity error, warning, info or off), got "${r}"`);
    if (!RULE_IDS.includes(m[1])) throw new UsageError(`unknown rule "${m[1]}" (known: ${RULE_IDS.join(', ')})`);
    rules[m[1]] = m[2];
  }
  const loader = args.options.get('loader');
  if (loader !== undefined && !parseLoader(loader))
    throw new UsageError(`--loader must be libbpf, libbpf>=M.m, cilium/ebpf or bcc, not "${loader}"`);
  const { settings } = validateSettings({
    ...(loader !== undefined ? { loader } : {}),
    targetKernels: args.options.get('target') ?? DEFAULT_SETTINGS.targetKernels,
    architectures: args.options.get('arch') === '*' ? [] : (args.list('arch') ?? [...DEFAULT_SETTINGS.architectures]),
    distros: args.list('distro') ?? [],
    rules,
  });
  // The options given here win over a project's configuration file.
  const pinned = new Set<SettingKey>();
  if (args.options.has('target')) pinned.add('targetKernels');
  if (args.options.has('arch')) pinned.add('architectures');
  if (args.options.has('distro')) pinned.add('distros');
  if (args.options.has('rule') || args.options.has('rules')) pinned.add('rules');
  if (loader !== undefined) pinned.add('loader');
  if (args.flags.has('no-config') && args.options.has('config')) throw new UsageError('--config and --no-config exclude each other');
  for (const d of args.list('define') ?? [])
    if (!/^[A-Za-z_]\w*(=.*)?$/.test(d)) throw new UsageError(`-D expects NAME or NAME=VALUE, got "${d}"`);
  const extraFlags = [...(args.list('include-dir') ?? []).map((d) => `-I${d}`), ...(args.list('define') ?? []).map((d) => `-D${d}`)];
  const compileCommands = args.options.get('compile-commands');
  if (compileCommands !== undefined && !isFile(compileCommands))
    throw new UsageError(`--compile-commands: ${compileCommands} is not a file`);
  const config = args.options.get('config');
  if (config !== undefined && !isFile(config)) throw new UsageError(`--config: ${config} is not a file`);
  if (args.flags.has('no-compile') && (args.flags.has('compile') || args.options.has('clang')))
    throw new UsageError('--no-compile excludes --compile and --clang');
  // The object pass runs when clang is found, unless --no-compile; --compile and --clang require it.
  const required = args.flags.has('compile') || args.options.has('clang');
  const found = args.flags.has('no-compile') ? undefined : findClang(args.options.get('clang'));
  if (required && !found)
    throw new UsageError(
      args.options.has('clang')
        ? `--clang: ${args.options.get('clang')} does not exist`
        : '--compile needs clang on PATH (or --clang PATH)',
    );
  const version = found ? clangMajor(found) : undefined;
  if (required && found && version !== undefined && version < MIN_CLANG)
    throw new UsageError(`clang ${version} (${found}) is too old for CO-RE objects: the object pass needs clang ${MIN_CLANG} or later`);
  const clang = found && (version === undefined || version >= MIN_CLANG) ? found : undefined;
  const noClang = args.flags.has('no-compile')
    ? 'not run (--no-compile)'
    : !found
      ? 'not run: no clang on PATH (--clang PATH to name one)'
      : !clang
        ? `not run: clang ${version} is too old for CO-RE objects (needs ${MIN_CLANG} or later)`
        : undefined;
  const db = KernelDb.open({ dataDir: args.options.get('data'), userDir: args.options.get('user-dir') });
  // Validate the target before reading files, so a typo is a usage error, not a silent default.
  const kernels = targetKernels(db, settings.targetKernels, settings.architectures, settings.distros);
  return {
    db,
    settings,
    pinned,
    kernels,
    engineOptions: {
      ...(compileCommands !== undefined ? { compileCommands } : {}),
      ...(args.flags.has('no-config') ? { config: false as const } : config !== undefined ? { config } : {}),
      extraFlags,
    },
    ...(clang ? { clang } : {}),
    ...(noClang ? { noClang } : {}),
  };
}

/** One checked file. */
export interface FileResult {
  path: string;
  /** The file's text as analysed (after --fix). */
  text?: string;
  findings: Finding[];
  error?: string;
  /** What threw while the file was analysed (a rule: its findings alone are missing). */
  failures?: readonly AnalysisFailure[];
  kernels?: readonly Kernel[];
  project?: string[];
  target?: string;
  object?: { mode: 'object'; arches: readonly string[] } | { mode: 'source'; reason: string };
}

/** The results of analysing the inputs. */
export interface AnalysisRun {
  readonly results: FileResult[];
  readonly problems: Set<string>;
  readonly unreadable: boolean;
  readonly fixedFiles: number;
}

/**
 * Analyses the BPF C files of `paths` as the language server does, with the object pass where
 * clang runs. Throws the usage error of {@link noInputError} when there is no file at all.
 */
export async function analyzeInputs(setup: AnalysisSetup, paths: readonly string[], fix: boolean): Promise<AnalysisRun> {
  const { db, settings, pinned, clang } = setup;
  const problems = new Set<string>();
  const files = collectInputs(paths, (p) => problems.add(p));
  if (files.length === 0) throw noInputError(paths);
  const parser = await loadCParser();
  const engine = new Engine(db, (text) => parser.parseText(text), setup.engineOptions);
  const results: FileResult[] = [];
  let unreadable = false;
  let fixedFiles = 0;
  for (const f of files) {
    if ('error' in f) {
      results.push({ path: f.path, findings: [], error: f.error });
      unreadable = true;
      continue;
    }
    // Bytes, bounded whatever stat says; decoded so that a fix changes only its own bytes.
    const read = readBoundedBytes(f.path, MAX_FILE_BYTES);
    if ('error' in read) {
      results.push({ path: f.path, findings: [], error: read.error });
      unreadable = true;
      continue;
    }
    let source = decodeSource(read.bytes);
    // Binary content, a minified line, more lines than any program: said, not parsed.
    const why =
      source.text.length > DEFAULT_PARSE_LIMITS.maxChars
        ? `too large: ${(source.text.length / 1e6).toFixed(1)} MB (the limit is ${(DEFAULT_PARSE_LIMITS.maxChars / 1e6).toFixed(1)} MB)`
        : unanalysable(source.text);
    if (why) {
      results.push({ path: f.path, findings: [], error: `skipped: ${why}` });
      unreadable = true;
      continue;
    }
    const tree = parser.parseText(source.text);
    if (!tree) {
      results.push({ path: f.path, findings: [], error: 'cannot parse' });
      unreadable = true;
      continue;
    }
    const uri = pathToFileURL(resolve(f.path)).toString();
    let r: DocumentResult | undefined;
    let pass: Awaited<ReturnType<typeof objectPass>> | undefined;
    const failures: AnalysisFailure[] = [];
    // One file's failure is that file's: the other files are checked and printed all the same.
    try {
      r = engine.analyzeDocument(uri, source.text, tree, settings, false, undefined, pinned);
      const edits = fix && r.failures.length === 0 ? fixAllEdits(r.findings) : [];
      if (edits.length) {
        // Only the edits' bytes change; the file is replaced atomically, its mode kept. Then
        // what is left in it is reported.
        const fixed = decodeSource(applyEditsToBytes(source, edits));
        replaceFileAtomic(f.path, fixed.bytes);
        source = fixed;
        fixedFiles++;
        r = reanalyze(source.text, r);
      }
      for (const p of r.problems) problems.add(p);
      // The object pass, on the file as it is now on disk (after --fix); its findings join the
      // source pass's in the analysis, where alternatives and suppression comments apply to both.
      pass = clang ? await objectPass(db, clang, resolve(f.path), source.text, engine.project(uri), r.settings, r.kernels) : undefined;
      if (pass && (pass.mode === 'object' || pass.errors.length > 0)) r = reanalyze(source.text, r, pass);
      failures.push(...r.failures);
    } catch (e) {
      failures.push(...(r?.failures ?? []), { message: (e as Error).message ?? String(e) });
    } finally {
      tree.delete();
    }
    results.push({
      path: f.path,
      text: source.text,
      findings: r?.findings ?? [],
      ...(failures.length ? { failures } : {}),
      ...(pass
        ? { object: pass.mode === 'object' ? { mode: 'object', arches: pass.arches } : { mode: 'source', reason: pass.reason } }
        : {}),
      ...(r ? { kernels: r.kernels } : {}),
      ...(r?.projectFiles.length ? { project: r.projectFiles } : {}),
      ...(r &&
      (r.settings.targetKernels !== settings.targetKernels ||
        r.settings.architectures.join() !== settings.architectures.join() ||
        r.settings.distros.join() !== settings.distros.join())
        ? { target: `${r.settings.targetKernels}${r.settings.architectures.length ? ` (${r.settings.architectures.join(',')})` : ''}` }
        : {}),
    });

    /** The file analysed again as `text` (after a fix, or with its object pass); the last result if it does not parse. */
    function reanalyze(text: string, last: DocumentResult, object?: Awaited<ReturnType<typeof objectPass>>): DocumentResult {
      const t = parser.parseText(text);
      if (!t) return last;
      try {
        return engine.analyzeDocument(uri, text, t, settings, false, undefined, pinned, object);
      } finally {
        t.delete();
      }
    }
  }
  engine.dispose();
  return { results, problems, unreadable, fixedFiles };
}

/** `n thing`, `n things`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Runs `check`; returns the exit status. */
export async function checkCommand(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv, withAnalysisSpec({ valued: ['format', 'max-warnings'], flags: ['fix'] }));
  if (args.flags.has('help')) {
    io.out(USAGE);
    return 0;
  }
  if (args.positional.length === 0) throw new UsageError('check needs at least one file or directory');
  const format = args.options.get('format') ?? 'text';
  if (format !== 'text' && format !== 'json' && format !== 'sarif')
    throw new UsageError(`--format must be text, json or sarif, not "${format}"`);
  const maxWarningsText = args.options.get('max-warnings');
  if (maxWarningsText !== undefined && !/^\d+$/.test(maxWarningsText))
    throw new UsageError(`--max-warnings expects a number of warnings (0 or more), got "${maxWarningsText}"`);
  const maxWarnings = maxWarningsText === undefined ? undefined : Number(maxWarningsText);
  const setup = analysisSetup(args);
  const { settings, kernels, clang, noClang } = setup;
  const fix = args.flags.has('fix');
  const { results, problems, unreadable, fixedFiles } = await analyzeInputs(setup, args.positional, fix);

  const count = (sev: string) => results.reduce((n, r) => n + r.findings.filter((d) => d.severity === sev).length, 0);
  const errors = count('error');
  const warnings = count('warning');
  const tooManyWarnings = maxWarnings !== undefined && warnings > maxWarnings;
  if (format === 'json') {
    io.out(
      `${JSON.stringify(
        {
          version: 1,
          target: settings.targetKernels,
          kernels: kernels.map((k) => k.name),
          ...(problems.size ? { problems: [...problems] } : {}),
          files: results.map((r) => ({
            path: r.path,
            ...(r.error ? { error: r.error } : {}),
            ...(r.failures ? { errors: r.failures.map((x) => ({ ...(x.rule ? { rule: x.rule } : {}), message: x.message })) } : {}),
            ...(r.object ? { object: r.object } : {}),
            ...(r.project ? { project: r.project } : {}),
            ...(r.target ? { target: r.target, kernels: r.kernels?.map((k) => k.name) } : {}),
            diagnostics: r.findings.map((d) => ({
              rule: d.rule,
              ...(d.basis ? { basis: d.basis } : {}),
              severity: d.severity,
              message: d.message,
              summary: headlineOf(d.message),
              range: d.range,
              kernels: d.kernels,
              fixes: d.fixes.map((x) => ({ title: x.title, edits: x.edits })),
            })),
          })),
        },
        null,
        2,
      )}\n`,
    );
  } else if (format === 'sarif') {
    io.out(
      `${JSON.stringify(
        sarifLog(
          results,
          process.cwd(),
          settings.targetKernels,
          kernels.map((k) => k.name),
        ),
        null,
        2,
      )}\n`,
    );
  } else {
    const st = style(io.color === true);
    const sev = { error: st.red, warning: st.yellow, info: st.cyan } as const;
    for (const r of results) {
      if (r.error) io.err(`${r.path}: ${r.error}\n`);
      for (const x of r.failures ?? [])
        io.err(
          x.rule
            ? `${r.path}: ${st.red('error:')} rule ${x.rule} failed (${x.message}); its findings in this file are missing, the other rules' are below\n`
            : `${r.path}: ${st.red('error:')} ${x.message}\n`,
        );
      const lines = r.text?.split('\n') ?? [];
      for (const d of r.findings) {
        // Compiler style: file:line:col (1-based, the column in UTF-8 bytes), severity, the
        // headline and the rule; then the line with a caret, then the details indented.
        const col = byteColumn(lines[d.range.start.line] ?? '', d.range.start.character);
        io.out(
          `${st.bold(`${r.path}:${d.range.start.line + 1}:${col}:`)} ${sev[d.severity](`${d.severity}:`)} ${headlineOf(d.message)} [${d.rule}]\n`,
        );
        io.out(excerpt(lines, d.range, st));
        for (const line of detailsOf(d.message)) io.out(`    ${line}\n`);
        const fileKernels = r.kernels ?? kernels;
        if (d.kernels.length && d.kernels.length < fileKernels.length) {
          const bad = fileKernels.filter((k) => d.kernels.includes(k.name));
          io.out(
            `    breaks on ${d.kernels.length} of ${plural(fileKernels.length, 'target kernel')}: ${versionRanges(bad, fileKernels)}\n`,
          );
        }
        if (d.fixes.length) io.out(`    fix: ${d.fixes[0].title}\n`);
      }
    }
    for (const p of problems) io.err(`${st.yellow('warning:')} ${p}\n`);
    if (noClang) io.out(`object pass: ${noClang}; checked from source\n`);
    // A file skipped or unreadable, or whose analysis failed as a whole (said above, with why), was
    // not checked at all: the counts below are of the files that were.
    const checked = results.filter((r) => r.error === undefined && r.kernels !== undefined);
    const unchecked = results.length - checked.length;
    if (clang && checked.length) {
      const compiled = checked.filter((r) => r.object?.mode === 'object').length;
      for (const r of checked) if (r.object?.mode === 'source') io.out(`${r.path}: object pass skipped: ${r.object.reason}\n`);
      io.out(
        `object pass (${clang}): ${compiled} of ${plural(checked.length, 'file')} compiled and checked as objects${compiled < checked.length ? '; the rest from source only' : ''}\n`,
      );
    }
    const byProject = new Map<string, number>();
    for (const r of results) if (r.project) byProject.set(r.project.join(', '), (byProject.get(r.project.join(', ')) ?? 0) + 1);
    for (const [files, n] of byProject) io.out(`project: ${files} (${plural(n, 'file')})\n`);
    const own = results.filter((r) => r.target).length;
    if (own)
      io.out(`${plural(own, 'file')} ${own === 1 ? 'uses its' : 'use their'} project's target instead of ${settings.targetKernels}\n`);
    io.out(
      `${plural(checked.length, 'file')} checked against ${plural(kernels.length, 'kernel')} (${settings.targetKernels}): ${plural(errors, 'error')}, ${plural(warnings, 'warning')}${fix ? `; fixed ${plural(fixedFiles, 'file')}` : ''}${unchecked ? `; ${plural(unchecked, 'file')} not checked (see above)` : ''}\n`,
    );
    if (tooManyWarnings) io.out(`more warnings than --max-warnings ${maxWarnings}\n`);
  }
  if (unreadable || results.some((r) => r.failures)) return 2;
  return errors > 0 || tooManyWarnings ? 1 : 0;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
