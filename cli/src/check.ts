/**
 * `ebpf-portability check <files|dirs…>`: the language server's analysis for CI. Text or JSON
 * output (docs/cli-json.md); exit status 1 when an error-severity finding exists, 2 for bad usage
 * or unreadable input.
 */
import { readdirSync, type Stats, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Kernel, KernelDb } from '../../kernel-db/src/query/db';
import { versionRanges } from '../../kernel-db/src/query/summary';
import { applyEditsToBytes, decodeSource, fixAllEdits } from '../../server/src/analysis/fixall';
import { readBoundedBytes, replaceFileAtomic } from '../../kernel-db/src/files';
import type { AnalysisFailure } from '../../server/src/driver/analyze';
import type { DocumentResult } from '../../server/src/driver/engine';
import { detailsOf, type Finding, headlineOf } from '../../server/src/analysis/model';
import { Engine } from '../../server/src/driver/engine';
import { isBpfDocument } from '../../server/src/analysis/bpfDocument';
import { loadCParser } from '../../server/src/parse/documents';
import { parseLoader } from '../../server/src/analysis/loader';
import { DEFAULT_SETTINGS, RULE_IDS, validateSettings } from '../../server/src/driver/settings';
import type { SettingKey } from '../../server/src/driver/engine';
import { CONFIG_FILE } from '../../server/src/driver/project';
import { clangMajor, findClang, MIN_CLANG } from '../../server/src/driver/compile';
import { objectPass } from '../../server/src/driver/objectPass';
import { parseArgs, UsageError } from './args';
import type { Io } from './db';

const USAGE = `usage: ebpf-portability check <files|dirs…> [options]

Checks BPF C files against the target kernels. Directories are searched for *.bpf.c files and
C files that look like BPF programs (BPF headers, SEC(), BCC macros).

options:
  --target SPEC         target kernels (default "${DEFAULT_SETTINGS.targetKernels}"): "5.8-7.x", "5.10", "*", names, "user"
  --arch LIST           only these architectures (default ${DEFAULT_SETTINGS.architectures.join(',')}; "*" for all)
  --distro LIST         only these distro families, e.g. debian,ubuntu
  --rule ID=SEVERITY    override a rule's severity (error, warning, info, off); repeatable as a list
  --loader L            libbpf (default), libbpf>=1.3, cilium/ebpf or bcc
  --format text|json    output format (default text)
  --fix                 apply every safe fix in place (BPF_CORE_READ rewrites, attributes, includes)
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
exit status: 0 no error findings, 1 error findings, 2 bad usage or unreadable input
`;

const MAX_FILE_BYTES = 10 * 1024 * 1024;

/** Runs `check`; returns the exit status. */
export async function checkCommand(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv, {
    valued: ['target', 'format', 'data', 'user-dir', 'loader', 'compile-commands', 'config', 'clang'],
    lists: ['arch', 'distro', 'rule'],
    repeated: ['include-dir', 'define'],
    flags: ['help', 'fix', 'no-config', 'compile', 'no-compile'],
    short: { I: 'include-dir', D: 'define' },
  });
  if (args.flags.has('help')) {
    io.out(USAGE);
    return 0;
  }
  if (args.positional.length === 0) throw new UsageError('check needs at least one file or directory');
  const format = args.options.get('format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--format must be text or json, not "${format}"`);
  const rules: Record<string, string> = {};
  for (const r of args.list('rule') ?? []) {
    const m = /^([a-z0-9-]+)=(error|warning|info|off)$/.exec(r);
    if (!m) throw new UsageError(`--rule expects ID=SEVERITY (severity error, warning, info or off), got "${r}"`);
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
  if (args.options.has('rule')) pinned.add('rules');
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
  const kernels = db.target(settings.targetKernels, { arch: settings.architectures, distro: settings.distros });
  if (kernels.length === 0) throw new UsageError(`no kernels match target "${settings.targetKernels}"`);

  const problems = new Set<string>();
  const files = collect(args.positional, (p) => problems.add(p));
  const parser = await loadCParser();
  const engine = new Engine(db, (text) => parser.parseText(text), {
    ...(compileCommands !== undefined ? { compileCommands } : {}),
    ...(args.flags.has('no-config') ? { config: false as const } : config !== undefined ? { config } : {}),
    extraFlags,
  });
  const results: {
    path: string;
    findings: Finding[];
    error?: string;
    /** What threw while the file was analysed (a rule: its findings alone are missing). */
    failures?: readonly AnalysisFailure[];
    kernels?: readonly Kernel[];
    project?: string[];
    target?: string;
    object?: { mode: 'object'; arches: readonly string[] } | { mode: 'source'; reason: string };
  }[] = [];
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
      const edits = args.flags.has('fix') && r.failures.length === 0 ? fixAllEdits(r.findings) : [];
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
  } else {
    let errors = 0;
    let warnings = 0;
    for (const r of results) {
      if (r.error) io.err(`${r.path}: ${r.error}\n`);
      for (const x of r.failures ?? [])
        io.err(
          x.rule
            ? `${r.path}: error: rule ${x.rule} failed (${x.message}); its findings in this file are missing, the other rules' are below\n`
            : `${r.path}: error: ${x.message}\n`,
        );
      for (const d of r.findings) {
        if (d.severity === 'error') errors++;
        else if (d.severity === 'warning') warnings++;
        // The headline on the finding's line, the details indented below it.
        io.out(`${r.path}:${d.range.start.line + 1}:${d.range.start.character + 1}: ${d.severity}: ${headlineOf(d.message)} [${d.rule}]\n`);
        for (const line of detailsOf(d.message)) io.out(`    ${line}\n`);
        const fileKernels = r.kernels ?? kernels;
        if (d.kernels.length && d.kernels.length < fileKernels.length) {
          const bad = fileKernels.filter((k) => d.kernels.includes(k.name));
          io.out(`    breaks on ${d.kernels.length} of ${fileKernels.length} target kernels: ${versionRanges(bad, fileKernels)}\n`);
        }
        if (d.fixes.length) io.out(`    fix: ${d.fixes[0].title}\n`);
      }
    }
    for (const p of problems) io.err(`warning: ${p}\n`);
    if (noClang) io.out(`object pass: ${noClang}; checked from source\n`);
    if (clang) {
      const compiled = results.filter((r) => r.object?.mode === 'object').length;
      for (const r of results) if (r.object?.mode === 'source') io.out(`${r.path}: object pass skipped: ${r.object.reason}\n`);
      io.out(
        `object pass (${clang}): ${compiled} of ${results.length} file(s) compiled and checked as objects; the rest from source only\n`,
      );
    }
    const byProject = new Map<string, number>();
    for (const r of results) if (r.project) byProject.set(r.project.join(', '), (byProject.get(r.project.join(', ')) ?? 0) + 1);
    for (const [files, n] of byProject) io.out(`project: ${files} (${n} file${n === 1 ? '' : 's'})\n`);
    const own = results.filter((r) => r.target).length;
    if (own) io.out(`${own} file(s) use their project's target instead of ${settings.targetKernels}\n`);
    io.out(
      `${results.length} file(s) checked against ${kernels.length} kernels (${settings.targetKernels}): ${errors} error(s), ${warnings} warning(s)${args.flags.has('fix') ? `; fixed ${fixedFiles} file(s)` : ''}\n`,
    );
  }
  if (unreadable || results.some((r) => r.failures)) return 2;
  return results.some((r) => r.findings.some((d) => d.severity === 'error')) ? 1 : 0;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * The files to check: named files as given, directories searched for BPF C files. In a
 * directory, what is not a regular file (a FIFO, a socket, a device named `*.c`) or is too large
 * is skipped and said through `skip`.
 */
function collect(paths: string[], skip: (message: string) => void): ({ path: string } | { path: string; error: string })[] {
  const out: ({ path: string } | { path: string; error: string })[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 20) return;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (n === 'node_modules' || n.startsWith('.')) continue;
      const p = join(dir, n);
      let st: Stats;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p, depth + 1);
      else if (/\.c$/.test(n)) {
        const shown = relative(process.cwd(), p) || p;
        const read = readBoundedBytes(p, MAX_FILE_BYTES);
        if ('error' in read) skip(`${shown}: skipped: ${read.error}`);
        else if (isBpfDocument(p, decodeSource(read.bytes).text)) out.push({ path: shown });
      }
    }
  };
  for (const p of paths) {
    let st: Stats;
    try {
      st = statSync(p);
    } catch (e) {
      out.push({ path: p, error: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      continue;
    }
    if (st.isDirectory()) walk(p, 0);
    else out.push({ path: p });
  }
  return out;
}
