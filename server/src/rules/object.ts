/**
 * The object pass: verdicts from a compiled BPF object instead of its source. For each program
 * (each global function of a program section, with the subprograms libbpf links into it) and each
 * target kernel, the CO-RE relocations are resolved as libbpf resolves them
 * (kernel-db/src/query/coreRelo.ts), their values and the addresses of `__weak` kfuncs
 * (`bpf_ksym_exists()`) patched in, and the instructions the verifier reaches found
 * (kernel-db/src/btf/link.ts). A failing relocation or a helper call the kernel does not offer
 * counts only where it is reached; a kfunc whose prototype libbpf refuses fails where the object
 * needs it. Each verdict names its rule (the one the source pass would use), its subject, the
 * instruction's source line from `.BTF.ext`, and the kernels that fail. The source lines each
 * kernel reaches are returned too: the source pass runs its rules only where the object runs.
 */
import { CoreReloKind, type CoreRelo, type LineInfo } from '../../../kernel-db/src/btf/ext';
import type { Insn } from '../../../kernel-db/src/btf/insns';
import { LinkedObject } from '../../../kernel-db/src/btf/link';
import type { BpfObject, ObjExtern } from '../../../kernel-db/src/btf/object';
import { Kind } from '../../../kernel-db/src/btf/reader';
import {
  FIELD_KINDS,
  kfuncProtoMismatch,
  RELO_KIND_NAMES,
  type ReloOutcome,
  type ReloResult,
  resolveRelo,
} from '../../../kernel-db/src/query/coreRelo';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import type { Loader } from '../analysis/loader';
import { findingMessage, headlineWith } from '../analysis/model';
import { allowedFor, PROBE_READ_LEGACY, rewritesProbeRead } from './helper-unavailable';
import { kfuncMissing } from './kfunc-unavailable';

/** One verdict of the object pass, placed at a source line. */
export interface ObjectVerdict {
  readonly rule: 'field-missing-in-range' | 'type-missing-in-range' | 'helper-unavailable' | 'kfunc-unavailable';
  /** What fails: the helper or kfunc name, or the relocated member or type as written. */
  readonly subject: string;
  readonly section: string;
  /** Source position from line_info (1-based line and column; column 0 when unknown). */
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
  readonly kernels: readonly Kernel[];
}

/** What the object pass learns from one object. */
export interface ObjectCheck {
  readonly verdicts: ObjectVerdict[];
  /**
   * Source lines some instruction of which a verifier reaches: file (as line_info names it) → 1-based
   * line → indexes into the kernel list of the kernels that reach it.
   */
  readonly lines: Map<string, Map<number, Set<number>>>;
}

const CALL = 0x85;
const LD_IMM64 = 0x18;

/** Checks an object's programs against `kernels`. */
export function checkObject(db: KernelDb, obj: BpfObject, kernels: readonly Kernel[], loader: Loader): ObjectCheck {
  const steps = checkObjectSteps(db, obj, kernels, loader);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * {@link checkObject} in steps: it yields after each relocation record it resolves, each kernel's
 * patching and each program's walks, so the language server runs it in time slices (an object of
 * hundreds of programs takes ~50–150 ms) and stops it when the document changes.
 */
export function* checkObjectSteps(
  db: KernelDb,
  obj: BpfObject,
  kernels: readonly Kernel[],
  loader: Loader,
): Generator<void, ObjectCheck, void> {
  const ext = obj.ext;
  const linked = new LinkedObject(obj);
  const lineAt = lineTables(linked, ext?.lineInfo ?? []);
  const helperById = new Map(db.facts.helpers.map((h) => [h.id, h]));
  const helpers = new Map<string, ReturnType<KernelDb['helper']>['kernels']>();
  const helperOn = (name: string) => {
    let a = helpers.get(name);
    if (!a) helpers.set(name, (a = db.helper(name, kernels).kernels));
    return a;
  };
  // One answer per distinct member or type asked, for this object and kernel list.
  const memo = new Map<string, readonly ReloOutcome[]>();
  // The same read in many programs is one relocation record each: resolved once.
  const byRecord = new Map<string, ReloResult>();
  const resolved: ReloResult[] = [];
  for (const r of ext?.coreRelos ?? []) {
    const key = `${r.typeId}:${r.access}:${r.kind}`;
    const known = byRecord.get(key);
    if (known) {
      resolved.push({ ...known, relo: r });
      continue;
    }
    const x = resolveRelo(db, obj.btf, r, kernels, memo);
    byRecord.set(key, x);
    resolved.push(x);
    yield;
  }
  const relosIn = new Map<string, ReloResult[]>();
  for (const r of resolved) {
    let l = relosIn.get(r.relo.section);
    if (!l) relosIn.set(r.relo.section, (l = []));
    l.push(r);
  }

  // kfuncs: which kernels have each, and which refuse the object's prototype of it.
  const kfuncs = new Map<string, { weak: boolean; missing: Set<number>; refused: Map<number, string> }>();
  for (const e of obj.externs) {
    if (e.kind !== 'ksym' || !e.isFunction) continue;
    const answers = db.kfunc(e.name, kernels);
    const missing = new Set(kfuncMissing(db, e.name, answers).map((k) => kernels.indexOf(k)));
    const refused = new Map<number, string>();
    answers.forEach((a, i) => {
      if (a.present !== true || !a.proto) return;
      const why = kfuncProtoMismatch(obj.btf, e.typeId, e.name, a.proto);
      if (why) refused.set(i, why);
    });
    kfuncs.set(e.name, { weak: e.weak, missing, refused });
  }
  /** What libbpf writes into an `ld_imm64` of a weak kfunc's address on kernel `i`: 0 where it is unresolved. */
  const ksymValue = (name: string, i: number): number | undefined => {
    const k = kfuncs.get(name);
    if (!k?.weak) return undefined;
    if (k.missing.has(i) || k.refused.has(i)) return 0;
    return db.kfunc(name, [kernels[i]])[0].present === true ? 1 : undefined;
  };

  // `__kconfig` values: libbpf writes them into the frozen `.kconfig` map, and the verifier reads
  // constants there, so a load right after the extern's address is known per kernel.
  const kconfigLoads = new Map<string, Map<number, ObjExtern>>();
  for (const [section, relocs] of obj.relocs) {
    const insns = linked.insns.get(section) ?? [];
    const index = new Map(insns.map((x, n) => [x.off, n]));
    for (const r of relocs) {
      const e = obj.externs.find((x) => x.kind === 'kconfig' && x.name === r.symbol.name);
      const n = index.get(r.offset);
      if (!e || r.symbolSection || n === undefined) continue;
      const ld = insns[n];
      const next = insns[n + 1];
      if (ld.code !== LD_IMM64 || !next || (next.code & 0xe7) !== 0x61 || next.src !== ld.dst || next.jmpOff !== 0) continue;
      let m = kconfigLoads.get(section);
      if (!m) kconfigLoads.set(section, (m = new Map()));
      m.set(next.off, e);
    }
  }
  const kconfigs = new Map<string, (number | undefined)[]>();
  const kconfigOn = (e: ObjExtern): (number | undefined)[] => {
    let v = kconfigs.get(e.name);
    if (!v) kconfigs.set(e.name, (v = kconfigValues(db, obj, e, kernels)));
    return v;
  };

  // Per section and kernel, the values libbpf patches in; kernels that patch alike reach alike.
  const patchedOn = (i: number) => {
    const bySection = new Map<string, Map<number, number>>();
    const key: string[] = [];
    for (const [section, relos] of relosIn) {
      const m = new Map<number, number>();
      for (const r of relos) {
        if (!r.existence || r.outcomes[i] === 'unknown') continue;
        m.set(r.relo.insnOff, r.outcomes[i] === 'ok' ? 1 : 0);
      }
      bySection.set(section, m);
    }
    for (const [section, relocs] of obj.relocs) {
      for (const r of relocs) {
        if (r.symbolSection || !kfuncs.has(r.symbol.name)) continue;
        const n = linked.index.get(section)?.get(r.offset);
        const insn = n === undefined ? undefined : linked.insns.get(section)?.[n];
        if (insn?.code !== LD_IMM64) continue;
        const v = ksymValue(r.symbol.name, i);
        if (v === undefined) continue;
        let m = bySection.get(section);
        if (!m) bySection.set(section, (m = new Map()));
        m.set(r.offset, v);
      }
    }
    for (const [section, loads] of kconfigLoads) {
      for (const [off, e] of loads) {
        const v = kconfigOn(e)[i];
        if (v === undefined) continue;
        let m = bySection.get(section);
        if (!m) bySection.set(section, (m = new Map()));
        m.set(off, v);
      }
    }
    for (const [section, m] of bySection) key.push(`${section}:${[...m].map(([o, v]) => `${o}=${v}`).join(',')}`);
    return { bySection, key: key.join(';') };
  };
  const patches: ReturnType<typeof patchedOn>[] = [];
  for (let i = 0; i < kernels.length; i++) {
    patches.push(patchedOn(i));
    yield;
  }
  // Kernels that patch alike reach alike: one group each.
  const groupOf = new Map<string, number>();
  const groups: number[][] = [];
  const groupIndex = patches.map((p, i) => {
    let g = groupOf.get(p.key);
    if (g === undefined) {
      groupOf.set(p.key, (g = groups.length));
      groups.push([]);
    }
    groups[g].push(i);
    return g;
  });

  const lines = new Map<string, Map<number, Set<number>>>();
  const pending = new Map<string, Pending>();
  const fail = (p: Omit<Pending, 'failing' | 'kinds'>, i: number) => {
    // The relocations of one member read on one source line (offset, size, shifts…) are one verdict.
    const l = lineAt.get(p.section)?.get(p.off);
    const where = p.relo && l ? `${l.file}:${l.line}` : `${p.section}:${p.off}`;
    const key = `${p.rule}\u0000${p.subject}\u0000${where}\u0000${p.cause}`;
    let q = pending.get(key);
    if (!q) pending.set(key, (q = { ...p, failing: new Set(), kinds: new Set() }));
    q.failing.add(i);
    if (p.relo) q.kinds.add(p.relo.relo.kind);
  };

  for (const prog of obj.programs) {
    const progType = db.facts.section(prog.section.replace(/^\?/, ''))?.fact.prog_type ?? undefined;
    // Where the program type itself is missing the program does not load at all (prog-type-unavailable
    // says so): its code's verdicts stay on the kernels that load it, one finding per cause.
    const types = progType ? db.progType(progType, kernels).kernels : undefined;
    // One walk per group of kernels, and one list of what it reaches.
    const reachMemo = new Map<number, Reached>();
    for (let i = 0; i < kernels.length; i++) {
      const { bySection } = patches[i];
      const g = groupIndex[i];
      let got = reachMemo.get(g);
      if (!got) {
        const reach = linked.reach(prog, (s) => bySection.get(s) ?? new Map());
        const relos: { section: string; r: ReloResult }[] = [];
        const calls: { section: string; x: Insn }[] = [];
        for (const [section, offs] of reach) {
          for (const r of relosIn.get(section) ?? []) if (!r.existence && offs.has(r.relo.insnOff)) relos.push({ section, r });
          for (const x of linked.calls.get(section) ?? []) if (offs.has(x.off)) calls.push({ section, x });
        }
        reachMemo.set(g, (got = { relos, calls }));
        for (const ks of reachedLines(reach, lineAt, lines)) ks.add(g);
        yield;
      }
      if (types?.[i].present === false) continue;
      for (const { section, r } of got.relos) {
        if (r.outcomes[i] !== 'fail') continue;
        fail(
          {
            rule: FIELD_KINDS.has(r.relo.kind) ? 'field-missing-in-range' : 'type-missing-in-range',
            subject: r.query?.text ?? '',
            section,
            off: r.relo.insnOff,
            cause: 'relo',
            relo: r,
          },
          i,
        );
      }
      for (const { section, x } of got.calls) {
        const reloc = linked.reloc(section, x.off);
        if (reloc) {
          // A call to an extern: a kfunc, refused where libbpf leaves it unresolved (weak) or rejects its prototype.
          const k = kfuncs.get(reloc.symbol.name);
          if (k?.refused.has(i))
            fail({ rule: 'kfunc-unavailable', subject: reloc.symbol.name, section, off: x.off, cause: k.weak ? 'proto-weak' : 'proto' }, i);
          continue;
        }
        // `call imm` with src 0 calls a helper by id.
        if (x.src !== 0) continue;
        const fact = helperById.get(x.imm);
        if (!fact) continue;
        const avail = helperOn(fact.name)[i];
        const legacy = PROBE_READ_LEGACY[fact.name];
        const stand = legacy && rewritesProbeRead(loader) ? helperOn(legacy)[i] : undefined;
        if (avail.present === false && stand?.present !== true)
          fail({ rule: 'helper-unavailable', subject: fact.name, section, off: x.off, cause: 'missing', since: fact.since }, i);
        else if (allowedFor(fact, progType) === false)
          fail({ rule: 'helper-unavailable', subject: fact.name, section, off: x.off, cause: `prog-type:${progType}` }, i);
      }
    }
  }
  // A strong kfunc whose prototype a kernel refuses fails the whole object there, called or not.
  for (const [name, k] of kfuncs) {
    if (k.weak || k.refused.size === 0) continue;
    const call = firstCall(linked, name);
    if (!call) continue;
    for (const i of k.refused.keys())
      fail({ rule: 'kfunc-unavailable', subject: name, section: call.section, off: call.off, cause: 'proto' }, i);
  }

  // The line sets hold groups so far: the kernels of each.
  for (const byLine of lines.values()) for (const [line, gs] of byLine) byLine.set(line, new Set([...gs].flatMap((g) => groups[g])));
  const verdicts: ObjectVerdict[] = [];
  for (const p of pending.values()) {
    const failing = kernels.filter((_, i) => p.failing.has(i));
    const l = lineAt.get(p.section)?.get(p.off);
    verdicts.push({
      rule: p.rule,
      subject: p.subject,
      section: p.section,
      ...(l ? { file: l.file, line: l.line, column: l.column } : {}),
      message: message(p, failing, kernels, kfuncs.get(p.subject)?.refused),
      kernels: failing,
    });
  }
  return { verdicts, lines };
}

/**
 * The value of a `__kconfig` extern on each kernel, as libbpf sets it: `LINUX_KERNEL_VERSION` from
 * the kernel's version (`KERNEL_VERSION(a, b, c)`, c capped at 255), a CONFIG option from its config
 * (`y` 1, `n` or absent 0, `m` 2 for a tristate, numbers as they are); undefined where unknown.
 */
function kconfigValues(db: KernelDb, obj: BpfObject, e: ObjExtern, kernels: readonly Kernel[]): (number | undefined)[] {
  if (e.name === 'LINUX_KERNEL_VERSION')
    return kernels.map((k) => {
      const [a, b, c] = k.version.split(/[.-]/).map(Number);
      return [a, b, c].every(Number.isInteger) ? a * 65536 + b * 256 + Math.min(c, 255) : undefined;
    });
  if (!e.name.startsWith('CONFIG_')) return kernels.map(() => undefined);
  let t = obj.btf.type(e.typeId).kind === Kind.Var ? obj.btf.ref(e.typeId) : 0;
  for (let n = 0; n < 16 && t !== 0 && [Kind.Typedef, Kind.Const, Kind.Volatile].includes(obj.btf.kind(t)); n++) t = obj.btf.ref(t);
  const tristate = t !== 0 && obj.btf.kind(t) === Kind.Enum;
  return db.config(e.name, kernels).map((a) => {
    if (a.present === null || a.value === undefined) return undefined;
    if (a.value === 'y') return 1;
    if (a.value === 'n' || a.value === 'unset') return 0;
    if (a.value === 'm') return tristate ? 2 : undefined;
    return /^-?\d+$|^0x[0-9a-fA-F]+$/.test(a.value) && Number.isSafeInteger(Number(a.value)) ? Number(a.value) : undefined;
  });
}

/** What one program reaches under one patching: its failing-kind relocations and calls. */
interface Reached {
  readonly relos: readonly { section: string; r: ReloResult }[];
  readonly calls: readonly { section: string; x: Insn }[];
}

/** A verdict being gathered: the kernels that fail one cause at one instruction. */
interface Pending {
  readonly rule: ObjectVerdict['rule'];
  readonly subject: string;
  readonly section: string;
  readonly off: number;
  readonly cause: string;
  readonly relo?: ReloResult;
  readonly since?: string;
  readonly failing: Set<number>;
  /** The relocation kinds gathered (member reads). */
  readonly kinds: Set<CoreReloKind>;
}

function message(p: Pending, failing: Kernel[], kernels: readonly Kernel[], refused: Map<number, string> | undefined): string {
  const on = describeKernels(failing, kernels);
  const n = `${failing.length} of ${kernels.length} target kernels`;
  if (p.relo) return reloMessage(p.relo, [...p.kinds], failing, kernels);
  if (p.cause === 'missing')
    return findingMessage(
      ...headlineWith(`\`${p.subject}\` is missing on ${n}`, 'the verifier rejects the call there'),
      `Missing on ${on} (it came in ${p.since}).`,
      'Found in the compiled object: a call the verifier reaches on those kernels.',
    );
  if (p.cause.startsWith('prog-type:'))
    return findingMessage(
      ...headlineWith(`${p.section} programs may not call \`${p.subject}\``, 'the verifier rejects the call'),
      `The program type ${p.cause.slice('prog-type:'.length)} may not call it; the call is reached on ${on}.`,
      'Found in the compiled object: a call the verifier reaches on those kernels.',
    );
  const why = [...new Set(kernels.map((_, i) => refused?.get(i)).filter((w): w is string => !!w))];
  const weak = p.cause === 'proto-weak';
  return findingMessage(
    ...headlineWith(
      `kfunc \`${p.subject}\`'s prototype does not match the kernel's on ${n}`,
      weak ? 'the verifier rejects the call there' : 'the object fails to load there',
    ),
    `libbpf compares the extern's prototype with the kernel's and refuses it: ${why.join('; ')}. Refused on ${on}.`,
    weak
      ? 'It is declared __weak, so libbpf leaves it unresolved there and the verifier rejects the call where it is reached.'
      : 'libbpf resolves every `__ksym` of the object before loading any program, so the whole object fails there.',
    'Declare it with the prototype of the kernels you target (vmlinux.h of a kernel that has it), or guard it with bpf_ksym_exists() and declare it __weak.',
  );
}

function reloMessage(r: ReloResult, kinds: readonly CoreReloKind[], failing: Kernel[], kernels: readonly Kernel[]): string {
  const names = kinds.map((k) => RELO_KIND_NAMES[k]);
  const q = r.query;
  const what = q?.text ?? `type ${r.relo.typeId} access ${r.relo.access}`;
  return findingMessage(
    ...headlineWith(
      `CO-RE relocation of ${what} fails on ${failing.length} of ${kernels.length} target kernels`,
      'the program does not load there',
    ),
    `The ${names.join(', ')} relocation${names.length > 1 ? 's find' : ' finds'} no ${describe(r.relo, q?.root)} on ${describeKernels(failing, kernels)}; ` +
      'libbpf poisons the instruction and the verifier reaches it there.',
    'Found in the compiled object, with the guards around it resolved per kernel.',
  );
}

function describe(relo: CoreRelo, root: string | undefined): string {
  if (FIELD_KINDS.has(relo.kind)) return `matching member (by name and kind) in ${root ? `\`${root}\`` : 'the kernel type'}`;
  if (relo.kind === CoreReloKind.EnumvalValue) return 'enum value of that name';
  return `type named \`${root ?? '?'}\``;
}

/**
 * Each program's source lines: those of every instruction libbpf links into it that some kernel
 * may reach (nothing patched: every branch counts), as `file:line`, and the line of its first
 * instruction (its function's opening line). For telling which program a finding belongs to.
 */
export function programLines(obj: BpfObject): Map<string, { lines: Set<string>; first?: { file: string; line: number } }> {
  const linked = new LinkedObject(obj);
  const lineAt = lineTables(linked, obj.ext?.lineInfo ?? []);
  const out = new Map<string, { lines: Set<string>; first?: { file: string; line: number } }>();
  for (const prog of obj.programs) {
    const lines = new Set<string>();
    for (const [section, offs] of linked.reach(prog, () => new Map()))
      for (const off of offs) {
        const l = lineAt.get(section)?.get(off);
        if (l && l.line > 0) lines.add(`${l.file}:${l.line}`);
      }
    const f = lineAt.get(prog.section)?.get(prog.offset);
    out.set(prog.name, { lines, ...(f ? { first: { file: f.file, line: f.line } } : {}) });
  }
  return out;
}

/** The sets (in `lines`, created as needed) of the source lines `reach` touches. */
function reachedLines(
  reach: Map<string, Set<number>>,
  lineAt: Map<string, Map<number, LineInfo>>,
  lines: Map<string, Map<number, Set<number>>>,
): Set<number>[] {
  const out = new Set<Set<number>>();
  for (const [section, offs] of reach) {
    const table = lineAt.get(section);
    if (!table) continue;
    for (const off of offs) {
      const l = table.get(off);
      if (!l || l.line === 0) continue;
      let byLine = lines.get(l.file);
      if (!byLine) lines.set(l.file, (byLine = new Map()));
      let ks = byLine.get(l.line);
      if (!ks) byLine.set(l.line, (ks = new Set()));
      out.add(ks);
    }
  }
  return [...out];
}

/** Per section, each instruction's source line: the last line_info at or before it. */
function lineTables(linked: LinkedObject, infos: readonly LineInfo[]): Map<string, Map<number, LineInfo>> {
  const out = new Map<string, Map<number, LineInfo>>();
  const bySection = new Map<string, LineInfo[]>();
  for (const l of infos) {
    let a = bySection.get(l.section);
    if (!a) bySection.set(l.section, (a = []));
    a.push(l);
  }
  for (const [section, insns] of linked.insns) {
    const ls = (bySection.get(section) ?? []).slice().sort((a, b) => a.insnOff - b.insnOff);
    const m = new Map<number, LineInfo>();
    let j = -1;
    for (const x of insns) {
      while (j + 1 < ls.length && ls[j + 1].insnOff <= x.off) j++;
      if (j >= 0) m.set(x.off, ls[j]);
    }
    out.set(section, m);
  }
  return out;
}

/** The first call of kfunc `name` in the object. */
function firstCall(linked: LinkedObject, name: string): { section: string; off: number } | undefined {
  for (const [section, relocs] of linked.obj.relocs)
    for (const r of relocs)
      if (!r.symbolSection && r.symbol.name === name && linked.insns.get(section)?.some((x) => x.off === r.offset && x.code === CALL))
        return { section, off: r.offset };
  return undefined;
}
