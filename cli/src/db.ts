/**
 * `ebpf-portability db …`: inspect the kernel database and import kernels.
 * Every query command prints a table, or with `--json` the documented JSON (docs/cli-json.md).
 */
import { KernelDb, fidelityCaveat, type Kernel, type KernelAnswer } from '../../kernel-db/src/query/db';
import { countOf, versionRanges } from '../../kernel-db/src/query/summary';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { parseArgs, UsageError } from './args';
import { targetKernels } from './inputs';
import { nearest } from './suggest';
import { table, yesNo } from './table';

/** Where command output goes (tests capture it). */
export interface Io {
  out(s: string): void;
  err(s: string): void;
  /** Whether text output may be coloured (stdout is a terminal; NO_COLOR / FORCE_COLOR). */
  readonly color?: boolean;
}

const USAGE = `usage: ebpf-portability db <command> [options]

commands:
  list                       kernels in the database (built-in and imported)
  field STRUCT.FIELD         a struct/union member on each kernel, with rename candidates
  struct NAME                a struct/union on each kernel, and its members that vary
  helper NAME                a BPF helper (bpf_ringbuf_output) on each kernel
  sec "SEC"                  what a SEC() name needs (lsm/file_open, fentry/do_unlinkat, xdp)
  kfunc NAME                 a kfunc on each kernel
  func NAME                  a kernel function (kprobe/fentry target) on each kernel
  tracepoint [CAT/]EVENT     a tracepoint on each kernel
  lsm HOOK                   an LSM hook (file_open) on each kernel
  config CONFIG_X            a CONFIG option's value on each kernel
  prog-type NAME             a program type (BPF_PROG_TYPE_LSM or lsm)
  map-type NAME              a map type (BPF_MAP_TYPE_RINGBUF or ringbuf)
  add FILE [--name N] [--version M.m.p] [--arch A] [--distro D] [--config F] [--force]
                             import a kernel's BTF (e.g. /sys/kernel/btf/vmlinux, a BTFHub .btf.tar.xz)
  remove NAME                remove an imported kernel

options:
  --target SPEC              kernels to show: "4.14-7.x", "5.10", "6.x", "5.8+", "*", names, "user" (default "*")
  --arch LIST                only these architectures (default ${DEFAULT_SETTINGS.architectures.join(',')}, as check; "*" for all;
                             db list lists every architecture unless given)
  --distro LIST              only these distro families, e.g. debian,ubuntu
  --json                     machine-readable output

exit status: 0 answered, 1 the struct member (field) or struct is on none of the kernels, 2 bad usage
`;

/** Runs a `db` subcommand; returns the exit status. */
export async function dbCommand(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv, {
    valued: ['target', 'name', 'version', 'config', 'data', 'user-dir'],
    lists: ['arch', 'distro'],
    flags: ['json', 'force', 'help'],
  });
  const [cmd, ...rest] = args.positional;
  if (!cmd || args.flags.has('help')) {
    io.out(USAGE);
    return cmd || args.flags.has('help') ? 0 : 2;
  }
  const db = KernelDb.open({ dataDir: args.options.get('data'), userDir: args.options.get('user-dir') });
  // Imported kernels left out (missing or damaged data) are said, whatever the command.
  for (const p of db.problems) io.err(`warning: ${p}\n`);
  const json = args.flags.has('json');
  const need = (what: string) => {
    if (rest.length !== 1) throw new UsageError(`db ${cmd} takes one ${what}`);
    return rest[0];
  };
  const targetSpec = args.options.get('target') ?? (cmd === 'list' ? '* user' : '*');
  // The same architectures as check by default, so a table agrees with check's findings; the
  // default leaves imported kernels in whatever their architecture (often "unknown").
  const given = args.options.get('arch') === '*' ? undefined : args.list('arch');
  const kernels = () => {
    if (given || args.options.get('arch') === '*') return targetKernels(db, targetSpec, given, args.list('distro'));
    const ks = targetKernels(db, targetSpec, undefined, args.list('distro'));
    const kept = ks.filter((k) => k.user || DEFAULT_SETTINGS.architectures.includes(k.arch));
    if (kept.length === 0)
      throw new UsageError(
        `no kernels match target "${targetSpec}" on the default architectures ${DEFAULT_SETTINGS.architectures.join(',')} (${ks.length} on others: --arch '*' for all)`,
      );
    return kept;
  };
  const emit = (value: unknown, text: () => string) => io.out(json ? `${JSON.stringify(value, null, 2)}\n` : text());

  switch (cmd) {
    case 'list': {
      if (rest.length) throw new UsageError('db list takes no arguments');
      // Without a target, every kernel: built-in and imported.
      const ks =
        args.options.has('target') || args.options.has('arch') || args.options.has('distro')
          ? targetKernels(db, targetSpec, args.options.get('arch') === '*' ? undefined : args.list('arch'), args.list('distro'))
          : db.kernels;
      emit(
        { kernels: ks.map(kernelJson) },
        () =>
          `${table(
            ['NAME', 'VERSION', 'ARCH', 'DISTRO', 'FLAVOUR', 'FIDELITY', 'SOURCE'],
            ks.map((k) => [k.name, k.version, k.arch, k.distro, k.flavour, k.fidelity + (k.user ? ' (imported)' : ''), k.source]),
          )}${ks.length} kernels\n`,
      );
      return 0;
    }
    case 'field': {
      const spec = need('STRUCT.FIELD');
      const m = /^(?:struct |union )?([A-Za-z_]\w*)\.([A-Za-z_]\w*)$/.exec(spec);
      if (!m) throw new UsageError(`expected STRUCT.FIELD, e.g. task_struct.__state; got "${spec}"`);
      const ks = kernels();
      const r = db.field(m[1], m[2], ks);
      const found = r.kernels.some((f) => f.present !== false);
      // A member on none of the kernels: most often a typo, so the nearest member names (or
      // struct names, when the struct is missing too) are offered.
      const structFound = r.kernels.some((f) => f.present || f.structPresent);
      const suggestions = found
        ? []
        : structFound
          ? nearest(
              m[2],
              ks.flatMap((k) => db.fieldNames(r.struct, k)),
            ).map((f) => `${r.struct}.${f}`)
          : nearest(
              m[1],
              db.aggregateNames().filter((x) => /^[A-Za-z_]\w*$/.test(x)),
            ).map((x) => `${x}.${m[2]}`);
      emit(
        {
          struct: r.struct,
          field: r.field,
          kernels: r.kernels.map((f) => ({
            name: f.kernel.name,
            version: f.kernel.version,
            arch: f.kernel.arch,
            present: f.present,
            ...(f.present
              ? {
                  type: f.type,
                  ...(f.offsetBits !== undefined ? { offsetBits: f.offsetBits } : {}),
                  ...(f.bitfieldBits !== undefined ? { bitfieldBits: f.bitfieldBits } : {}),
                  ...(f.size !== undefined ? { size: f.size } : {}),
                  ...(f.tags ? { tags: f.tags } : {}),
                  ...(f.anon ? { anon: f.anon } : {}),
                }
              : { structPresent: f.structPresent }),
            fidelity: f.kernel.fidelity,
          })),
          renameCandidates: r.renameCandidates,
          ...(found ? {} : { didYouMean: suggestions }),
        },
        () => {
          const rows = r.kernels.map((f) => [
            f.kernel.name,
            f.kernel.version,
            f.kernel.arch,
            f.present ? 'yes' : f.structPresent ? 'no' : `no (no struct ${r.struct})`,
            f.type ?? '',
            f.offsetBits === undefined ? (f.present ? '?' : '') : `${f.offsetBits / 8}`,
            f.bitfieldBits === undefined ? (f.present ? '?' : '') : f.bitfieldBits ? `:${f.bitfieldBits}` : '',
            caveat(f.kernel, f.present),
          ]);
          const present = r.kernels.filter((f) => f.present).map((f) => f.kernel);
          let s = table(['KERNEL', 'VERSION', 'ARCH', 'PRESENT', 'TYPE', 'OFFSET', 'BITFIELD', 'NOTE'], rows);
          s += `\n${r.struct}.${r.field}: present on ${countOf(present, ks)}${present.length ? ` (${versionRanges(present, ks)})` : ''}\n`;
          for (const c of r.renameCandidates) {
            s +=
              `  rename candidate: ${c.name} on ${c.kernels.length} kernel(s) where ${r.field} is absent` +
              ` (${[c.similarName && 'similar name', c.sameType && 'same type', c.sameOffset && 'same offset'].filter(Boolean).join(', ')})\n`;
          }
          if (!found) {
            s += `${structFound ? `no member ${r.field} in struct ${r.struct}` : `no struct ${r.struct}`} on any of the ${ks.length === 1 ? 'kernel' : `${ks.length} kernels`}`;
            s += suggestions.length ? `; did you mean ${suggestions.join(', ')}?\n` : '\n';
          }
          return s;
        },
      );
      return found ? 0 : 1;
    }
    case 'struct': {
      const name = need('NAME').replace(/^(struct|union) /, '');
      const ks = kernels();
      const per = db.aggregate(name, ks);
      const withStruct = ks.filter((_, i) => per[i].present);
      const suggestions = withStruct.length
        ? []
        : nearest(
            name,
            db.aggregateNames().filter((x) => /^[A-Za-z_]\w*$/.test(x)),
          );
      // Members that are not on every kernel that has the struct: the ones worth knowing about.
      const names = new Set<string>();
      for (const k of withStruct) for (const f of db.fieldNames(name, k)) names.add(f);
      const varying = [...names]
        .map((f) => {
          const av = db.field(name, f, withStruct);
          const on = av.kernels.filter((x) => x.present).map((x) => x.kernel);
          const types = [
            ...new Set(av.kernels.filter((x) => x.present).map((x) => `${x.type}${x.bitfieldBits ? `:${x.bitfieldBits}` : ''}`)),
          ];
          return { field: f, presentOn: on.length, types, ranges: versionRanges(on, withStruct) };
        })
        .filter((v) => v.presentOn < withStruct.length || v.types.length > 1);
      emit(
        {
          struct: name,
          kernels: per.map((a) => ({
            name: a.kernel.name,
            version: a.kernel.version,
            arch: a.kernel.arch,
            present: a.present,
            ...(a.kind ? { kind: a.kind } : {}),
            ...(a.size !== undefined ? { size: a.size } : {}),
            fidelity: a.kernel.fidelity,
          })),
          varyingFields: varying,
          ...(withStruct.length ? {} : { didYouMean: suggestions }),
        },
        () => {
          let s = table(
            ['KERNEL', 'VERSION', 'ARCH', 'PRESENT', 'KIND', 'SIZE', 'NOTE'],
            per.map((a) => [
              a.kernel.name,
              a.kernel.version,
              a.kernel.arch,
              yesNo(a.present),
              a.kind ?? '',
              a.size === undefined ? '' : String(a.size),
              caveat(a.kernel, a.present),
            ]),
          );
          s += `\n${name}: present on ${countOf(withStruct, ks)}${withStruct.length ? ` (${versionRanges(withStruct, ks)})` : ''}\n`;
          if (!withStruct.length && suggestions.length) s += `did you mean ${suggestions.join(', ')}?\n`;
          if (varying.length) {
            s += `\nmembers that differ across those kernels:\n`;
            s += table(
              ['FIELD', 'PRESENT ON', 'TYPES'],
              varying.map((v) => [v.field, `${v.presentOn}/${withStruct.length}: ${v.ranges}`, v.types.join(' | ')]),
            );
          }
          return s;
        },
      );
      return withStruct.length ? 0 : 1;
    }
    case 'helper': {
      const ks = kernels();
      const h = db.helper(need('NAME'), ks);
      emit(
        { helper: h.helper, id: h.id, since: h.since, gplOnly: h.gplOnly, progTypes: h.progTypes, kernels: h.kernels.map(answerJson) },
        () =>
          header([
            ['helper', h.helper],
            ['id', h.id],
            ['since (facts)', h.since],
            ['GPL only', h.gplOnly],
            ['program types', h.progTypes?.join(', ')],
          ]) + answers(h.kernels, ks),
      );
      return 0;
    }
    case 'prog-type':
    case 'map-type': {
      const ks = kernels();
      const r = cmd === 'prog-type' ? db.progType(need('NAME'), ks) : db.mapType(need('NAME'), ks);
      emit(
        { name: r.name, since: r.since, configs: r.configs, kernels: r.kernels.map(answerJson) },
        () =>
          header([
            ['name', r.name],
            ['since (facts)', r.since],
            ['configs', r.configs?.join(', ')],
          ]) + answers(r.kernels, ks),
      );
      return 0;
    }
    case 'sec': {
      const ks = kernels();
      const r = db.section(need('SEC'), ks);
      const cfg = r.configs.map((c) => ({ name: c, values: db.config(c, ks) }));
      emit(
        {
          sec: r.sec,
          prefix: r.prefix,
          progType: r.progType,
          attachType: r.attachType,
          target: r.target,
          sinceKernel: r.sinceKernel,
          configs: r.configs,
          kernels: r.kernels.map((a, i) => ({
            ...answerJson(a),
            reasons: a.reasons,
            configs: Object.fromEntries(cfg.map((c) => [c.name, c.values[i].value ?? null])),
          })),
        },
        () => {
          let s = header([
            ['SEC', r.sec],
            ['libbpf prefix', r.prefix],
            ['program type', r.progType],
            ['attach type', r.attachType],
            ['target', r.target],
            ['since (facts)', r.sinceKernel],
            ['configs', r.configs.join(', ')],
          ]);
          s += table(
            ['KERNEL', 'VERSION', 'ARCH', 'AVAILABLE', 'BASIS', 'WHY NOT', 'CONFIG OFF'],
            r.kernels.map((a, i) => [
              a.kernel.name,
              a.kernel.version,
              a.kernel.arch,
              yesNo(a.present),
              a.basis,
              a.reasons.join('; '),
              cfg
                .filter((c) => c.values[i].value === 'n' || c.values[i].value === 'unset')
                .map((c) => c.name)
                .join(' ') || (a.kernel.hasConfig ? '' : '(no config)'),
            ]),
          );
          const ok = r.kernels.filter((a) => a.present).map((a) => a.kernel);
          return `${s}\n${r.sec}: available on ${countOf(ok, ks)}${ok.length ? ` (${versionRanges(ok, ks)})` : ''}\n`;
        },
      );
      return 0;
    }
    case 'kfunc':
    case 'func':
    case 'lsm': {
      const ks = kernels();
      const name = need('NAME');
      const r = cmd === 'kfunc' ? db.kfunc(name, ks) : cmd === 'lsm' ? db.lsmHook(name, ks) : db.func(name, ks);
      emit(
        {
          [cmd === 'lsm' ? 'hook' : cmd]: name,
          kernels: r.map((a) => ({ ...answerJson(a), ...(a.inlined ? { inlined: true } : {}), ...(a.proto ? { proto: a.proto } : {}) })),
        },
        () => answers(r, ks, (a) => [a.inlined ? 'inlined' : '', a.proto ?? '']),
      );
      return 0;
    }
    case 'tracepoint': {
      const ks = kernels();
      const r = db.tracepoint(need('EVENT'), ks);
      emit({ tracepoint: rest[0], kernels: r.map((a) => ({ ...answerJson(a), ...(a.class ? { class: a.class } : {}) })) }, () =>
        answers(r, ks),
      );
      return 0;
    }
    case 'config': {
      const ks = kernels();
      const r = db.config(need('CONFIG_X'), ks);
      emit({ config: rest[0], kernels: r.map((a) => ({ ...answerJson(a), value: a.value ?? null })) }, () =>
        answers(r, ks, (a) => [a.value ?? 'unknown (no config)']),
      );
      return 0;
    }
    case 'add': {
      const file = need('FILE');
      const t0 = performance.now();
      const meta = await db.user!.add(file, db.facts, (n) => db.kernels.some((k) => !k.user && k.name === n), {
        name: args.options.get('name'),
        version: args.options.get('version'),
        arch: args.options.get('arch'),
        distro: args.options.get('distro'),
        config: args.options.get('config'),
        force: args.flags.has('force'),
      });
      emit(
        { added: meta, ms: Math.round(performance.now() - t0) },
        () =>
          `imported ${meta.name} (version ${meta.version}, ${meta.arch}, ${meta.fidelity}) into ${db.user!.dir} in ${Math.round(performance.now() - t0)} ms\n` +
          `use it with --target ${meta.name} (or --target user for every imported kernel)\n`,
      );
      return 0;
    }
    case 'remove': {
      const name = need('NAME');
      if (!db.user!.remove(name)) throw new UsageError(`no imported kernel named ${name}`);
      emit({ removed: name }, () => `removed ${name}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown db command "${cmd}"`);
  }
}

function kernelJson(k: Kernel) {
  return {
    name: k.name,
    release: k.release,
    version: k.version,
    arch: k.arch,
    distro: k.distro,
    flavour: k.flavour,
    fidelity: k.fidelity,
    source: k.source,
    hasConfig: k.hasConfig,
    imported: k.user,
  };
}

function answerJson(a: KernelAnswer) {
  return {
    name: a.kernel.name,
    version: a.kernel.version,
    arch: a.kernel.arch,
    present: a.present,
    basis: a.basis,
    fidelity: a.kernel.fidelity,
  };
}

function caveat(k: Kernel, present: boolean | null): string {
  if (present === true && k.fidelity !== 'depsurf') return '';
  return fidelityCaveat(k.fidelity) ?? '';
}

function header(pairs: [string, unknown][]): string {
  return `${pairs
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${typeof v === 'boolean' ? (v ? 'yes' : 'no') : v}`)
    .join('\n')}\n\n`;
}

function answers<A extends KernelAnswer>(rows: readonly A[], all: readonly Kernel[], extra?: (a: A) => string[]): string {
  const ok = rows.filter((a) => a.present).map((a) => a.kernel);
  const unknown = rows.filter((a) => a.present === null).length;
  const extraHead = extra && rows.length ? extra(rows[0]).map((_, i) => (i === 0 ? 'DETAIL' : 'INFO')) : [];
  return `${table(
    ['KERNEL', 'VERSION', 'ARCH', 'PRESENT', 'BASIS', ...extraHead],
    rows.map((a) => [a.kernel.name, a.kernel.version, a.kernel.arch, yesNo(a.present), a.basis, ...(extra ? extra(a) : [])]),
  )}\npresent on ${countOf(ok, all)}${ok.length ? ` (${versionRanges(ok, all)})` : ''}${unknown ? `; unknown on ${unknown}` : ''}\n`;
}
