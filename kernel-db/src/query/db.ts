/**
 * The query API over the kernel database: the built-in kernels plus any the user imported.
 * Pure TypeScript with plain-data answers; the language server and the CLI both use it.
 *
 * Every per-kernel answer says on what it rests (`basis`): the kernel's own BTF, DepSurf's
 * tables, its `.config`, or a version floor from the curated facts where the kernel's data
 * cannot say. `present: null` means unknown, never "absent".
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KernelStore } from '../store/store';
import type { Fidelity, KernelMeta } from '../store/schema';
import { compareVersions } from '../version';
import { AnswerCache } from './answers';
import { Facts, type EnumFact } from './facts';
import { TargetSpec, type TargetFilters } from './target';
import { UserKernels } from './user';
import { renameEvidence, similar, type LaidOutMember, type RenameEvidence, type RenamePair } from './renames';
import { detached } from '../strings';

/** A kernel of the database as queries see it. */
export interface Kernel extends KernelMeta {
  /** Index in {@link KernelDb.kernels}. */
  readonly id: number;
  /** Imported with `db add`. */
  readonly user: boolean;
}

/** What a per-kernel answer rests on. */
export type Basis = 'btf' | 'depsurf' | 'config' | 'facts';

/** The common part of every per-kernel answer. */
export interface KernelAnswer {
  readonly kernel: Kernel;
  /** true / false, or null when the data cannot say. */
  readonly present: boolean | null;
  readonly basis: Basis;
}

/** A field on one kernel. */
export interface FieldOnKernel extends KernelAnswer {
  /** Whether the containing struct/union exists on this kernel. */
  readonly structPresent: boolean;
  readonly type?: string;
  readonly tags?: string;
  /** Bit offset; absent when unknown (DepSurf kernels). */
  readonly offsetBits?: number;
  /** Bitfield width (0: not a bitfield); absent when unknown. */
  readonly bitfieldBits?: number;
  /** Size in bytes; absent when unknown. */
  readonly size?: number;
  /** Anonymous struct/union members C looks through, e.g. `union`. */
  readonly anon?: string;
  /** The aggregate member access continues into (for chains). */
  readonly ref?: string;
}

/**
 * A member the layouts show to be the queried one under another name (see `renames.ts`): on the
 * adjacent kernels where the queried member appears or disappears, it takes its offset or its
 * place between the same neighbours, with a compatible type, and no kernel has both.
 */
export interface RenameCandidate {
  readonly name: string;
  /** Kernels of the query where the queried field is absent and this one present. */
  readonly kernels: string[];
  /** On some evidence pair: the same type string. */
  readonly sameType: boolean;
  /** On some evidence pair: the same offset. */
  readonly sameOffset: boolean;
  /** On some evidence pair: between the queried member's neighbours. */
  readonly sameNeighbours: boolean;
  /** A kindred name (`state`/`__state`); ranks, never decides. */
  readonly similarName: boolean;
  /** The adjacent kernels that show it, the one with the queried field first. */
  readonly evidence: RenamePair[];
}

/** Availability of `struct.field` across kernels. */
export interface FieldAvailability {
  readonly struct: string;
  readonly field: string;
  readonly kernels: FieldOnKernel[];
  readonly renameCandidates: RenameCandidate[];
}

/** A struct/union on one kernel. */
export interface AggregateOnKernel extends KernelAnswer {
  readonly kind?: 'struct' | 'union';
  readonly size?: number;
}

/** A value on one kernel (enum constant, CONFIG option). */
export interface ValueOnKernel extends KernelAnswer {
  readonly value?: string;
}

/** A function (attach target, kfunc, LSM hook) on one kernel. */
export interface FuncOnKernel extends KernelAnswer {
  /** Exists only inlined: no symbol to attach to (DepSurf kernels). */
  readonly inlined?: boolean;
  /** Exists only as this compiler clone (`name.isra.0`): no symbol of its own name (booted kernels' kallsyms). */
  readonly clone?: string;
  readonly kfunc?: boolean;
  readonly proto?: string;
}

/** A helper on one kernel. */
export interface HelperAvailability {
  readonly helper: string;
  readonly id?: number;
  readonly since?: string;
  readonly gplOnly?: boolean;
  readonly progTypes?: string[];
  readonly kernels: KernelAnswer[];
}

/** A SEC() name across kernels: program type, attach type, target and CONFIG needs. */
export interface SectionAvailability {
  readonly sec: string;
  readonly prefix?: string;
  readonly progType?: string;
  readonly attachType?: string;
  readonly target?: string;
  readonly sinceKernel?: string;
  readonly configs: string[];
  readonly kernels: (KernelAnswer & { reasons: string[] })[];
}

/** Where to find the database files. */
export interface OpenOptions {
  /** Folder with `kernels.kdb` and `facts.json.gz` (default: the built-in `kernel-db/data`). */
  readonly dataDir?: string;
  /** Folder of imported kernels (default: the per-user store). */
  readonly userDir?: string;
  /** Leave imported kernels out. */
  readonly noUser?: boolean;
}

/** Finds the built-in data folder from the code's location (sources or the bundle). */
export function defaultDataDir(): string {
  const env = process.env.EBPF_PORTABILITY_DATA;
  if (env) return env;
  for (const rel of [
    ['..', '..', 'data'],
    ['..', 'kernel-db', 'data'],
    ['..', '..', '..', 'kernel-db', 'data'],
  ]) {
    const p = join(__dirname, ...rel);
    if (existsSync(join(p, 'kernels.kdb'))) return p;
  }
  return join(__dirname, '..', 'kernel-db', 'data');
}

/** The kernel database: built-in store, imported kernels and curated facts. */
export class KernelDb {
  readonly kernels: Kernel[] = [];
  private readonly stores: { store: KernelStore | undefined; offset: number; count: number; load?: () => KernelStore }[] = [];
  /** Answers of the per-kernel queries (see answers.ts). */
  private readonly answers = new AnswerCache();
  /** Function name → whether any DepSurf kernel lists it (the database is immutable once open). */
  private readonly depsurfTrackedCache = new Map<string, boolean>();
  private factsCache?: Facts;

  private constructor(
    main: KernelStore,
    private readonly factsPath: string,
    readonly user: UserKernels | undefined,
  ) {
    this.addStore(main, main.kernels, false);
    // Imported kernels whose data is missing or damaged are left out, each with a message.
    const imported = user?.open();
    for (const u of imported?.kernels ?? []) this.addStore(undefined, [u.meta], true, () => u.load());
    this.problems = imported?.problems ?? [];
  }

  /** What is wrong with the imported kernels (each left out), to tell the user. */
  readonly problems: readonly string[];

  private addStore(store: KernelStore | undefined, metas: readonly KernelMeta[], user: boolean, load?: () => KernelStore) {
    const offset = this.kernels.length;
    metas.forEach((m, i) => this.kernels.push({ ...m, id: offset + i, user }));
    this.stores.push({ store, offset, count: metas.length, load });
  }

  /** Opens the database. */
  static open(opts: OpenOptions = {}): KernelDb {
    const dir = opts.dataDir ?? defaultDataDir();
    const kdb = join(dir, 'kernels.kdb');
    if (!existsSync(kdb)) throw new Error(`kernel database not found at ${kdb} (build it with \`npm run kernel-db:build\`)`);
    const user = opts.noUser ? undefined : new UserKernels(opts.userDir);
    return new KernelDb(KernelStore.open(kdb), join(dir, 'facts.json.gz'), user);
  }

  /**
   * Opens the database as {@link KernelDb.open} does, reading and decompressing the built-in store
   * off the main thread (the language server loads its parser meanwhile).
   */
  static async openAsync(opts: OpenOptions = {}): Promise<KernelDb> {
    const dir = opts.dataDir ?? defaultDataDir();
    const kdb = join(dir, 'kernels.kdb');
    if (!existsSync(kdb)) throw new Error(`kernel database not found at ${kdb} (build it with \`npm run kernel-db:build\`)`);
    const factsPath = join(dir, 'facts.json.gz');
    // The facts are read beside the store and parsed while the main thread waits for it, as the
    // first analysis needs them.
    const [store, facts] = await Promise.all([KernelStore.openAsync(kdb), existsSync(factsPath) ? Facts.loadAsync(factsPath) : undefined]);
    const user = opts.noUser ? undefined : new UserKernels(opts.userDir);
    const db = new KernelDb(store, factsPath, user);
    db.factsCache = facts;
    return db;
  }

  /** Opens a database from a store already in memory (tests, fixtures). */
  static fromStore(store: KernelStore, factsPath: string, user?: UserKernels): KernelDb {
    return new KernelDb(store, factsPath, user);
  }

  /** The curated facts (loaded on first use). */
  get facts(): Facts {
    return (this.factsCache ??= existsSync(this.factsPath) ? Facts.load(this.factsPath) : new Facts({}));
  }

  private readonly effectiveCache = new Map<number, string>();
  /**
   * The version a kernel counts as for version floors: its own version, or the floor (in the
   * facts) of the newest helper its own `enum bpf_func_id` has when that is later. A distro kernel
   * that backported helpers backported the verifier around them too (openEuler's 4.19 has 5.5's
   * helpers), so its version number understates it. Kernels without the enum keep their version.
   */
  effectiveVersion(k: Kernel): string {
    let v = this.effectiveCache.get(k.id);
    if (v === undefined) {
      if (k.hasHelperEnum) {
        // The enum's rows read directly: ~200 helpers on each of ~80 kernels through the answer
        // cache cost more than the rest of a small file's first analysis.
        const { s, i } = this.locate(k);
        const ks = s.view('enumv.kset', 'u32');
        v = this.facts.newestHelperSince(
          (h) => s.enumRows('bpf_func_id', `BPF_FUNC_${h.name.replace(/^bpf_/, '')}`).some((r) => s.has(ks[r], i)),
          k.version,
        );
      } else v = k.version;
      this.effectiveCache.set(k.id, v);
    }
    return v;
  }

  /** Kernels of `kernels` whose {@link effectiveVersion} is older than `since`. */
  olderThan(kernels: readonly Kernel[], since: string): Kernel[] {
    return kernels.filter((k) => compareVersions(this.effectiveVersion(k), since) < 0);
  }

  /** Kernels selected by a target spec such as `4.14-7.x` (see `target.ts`). */
  target(spec: string, filters?: TargetFilters): Kernel[] {
    return TargetSpec.parse(spec, filters).select(this.kernels);
  }

  /** The store holding kernel `k`, and `k`'s index in it. */
  private locate(k: Kernel): { s: KernelStore; i: number } {
    for (const e of this.stores) {
      if (k.id >= e.offset && k.id < e.offset + e.count) {
        if (!e.store) e.store = e.load!();
        return { s: e.store, i: k.id - e.offset };
      }
    }
    throw new Error(`kernel ${k.name} is not in this database`);
  }

  private basisOf(k: Kernel): Basis {
    return k.fidelity === 'depsurf' ? 'depsurf' : 'btf';
  }

  /** Struct/union presence, kind and size per kernel. */
  aggregate(name: string, kernels: readonly Kernel[]): AggregateOnKernel[] {
    return this.answers.get('aggregate', [name], kernels, (name) => {
      return kernels.map((k) => {
        const { s, i } = this.locate(k);
        const v = s.aggregate(name).find((a) => s.has(a.kset, i));
        return v
          ? { kernel: k, present: true, basis: this.basisOf(k), kind: v.kind, ...(v.size >= 0 ? { size: v.size } : {}) }
          : { kernel: k, present: false, basis: this.basisOf(k) };
      });
    });
  }

  /** `struct.field` per kernel, with rename candidates where it is absent. */
  field(struct: string, field: string, kernels: readonly Kernel[]): FieldAvailability {
    return this.answers.get('field', [struct, field], kernels, (struct, field) => {
      const out = kernels.map((k) => this.fieldOn(struct, field, k));
      return { struct, field, kernels: out, renameCandidates: this.renameCandidates(struct, field, out) };
    });
  }

  /** One field on one kernel. */
  fieldOn(struct: string, field: string, k: Kernel): FieldOnKernel {
    const { s, i } = this.locate(k);
    const basis = this.basisOf(k);
    const rows = s.fieldRows(struct, field);
    if (rows) {
      const ksets = s.view('field.kset', 'u32');
      for (const r of rows) {
        // The kernel's row first, then decode only that one.
        if (!s.has(ksets[r], i)) continue;
        const f = s.fieldRecord(r);
        return {
          kernel: k,
          present: true,
          basis,
          structPresent: true,
          type: f.type,
          tags: f.tags,
          ...(f.offsetBits >= 0 ? { offsetBits: f.offsetBits } : {}),
          ...(f.bitfieldBits >= 0 ? { bitfieldBits: f.bitfieldBits } : {}),
          ...(f.size >= 0 ? { size: f.size } : {}),
          anon: f.anon,
          ref: f.ref,
        };
      }
    }
    const structPresent = s.aggregate(struct).some((a) => s.has(a.kset, i));
    return { kernel: k, present: false, basis, structPresent };
  }

  /** All field names of `struct` on kernel `k`. */
  fieldNames(struct: string, k: Kernel): string[] {
    const { s, i } = this.locate(k);
    const out: string[] = [];
    for (const [name, rows] of s.fields(struct)) if (rows.some((r) => s.has(s.fieldRecord(r).kset, i))) out.push(name);
    return out;
  }

  /**
   * The members of the query's kernels that lack `field` which the layouts show to be `field`
   * renamed, with the query's kernels that have each; the best supported first.
   */
  private renameCandidates(struct: string, field: string, per: FieldOnKernel[]): RenameCandidate[] {
    const missing = per.filter((p) => p.present === false && p.structPresent);
    if (missing.length === 0) return [];
    const out: RenameCandidate[] = [];
    for (const e of this.renameEvidence(struct, field)) {
      const on = missing.filter((m) => this.fieldOn(struct, e.name, m.kernel).present);
      if (on.length === 0) continue;
      out.push({
        name: e.name,
        kernels: on.map((m) => m.kernel.name),
        sameType: e.pairs.some((p) => p.sameType),
        sameOffset: e.pairs.some((p) => p.sameOffset),
        sameNeighbours: e.pairs.some((p) => p.sameNeighbours),
        similarName: similar(e.name, field),
        evidence: e.pairs,
      });
    }
    return out;
  }

  /**
   * The members that every kernel of the database with a layout (BTF offsets) shows to be
   * `struct.field` under another name, from the adjacent kernels where it appears or disappears
   * (`renames.ts`); the target does not matter, the evidence is where the database has it.
   */
  renameEvidence(struct: string, field: string): RenameEvidence[] {
    return this.answers.get('renameEvidence', [struct, field], this.kernels, (struct, field) => {
      const agg = this.aggregate(struct, this.kernels);
      const all = this.kernels.filter((_, i) => agg[i].present);
      const members = new Map<number, LaidOutMember[]>();
      return renameEvidence<Kernel>(field, {
        layoutKernels: all.filter((k) => k.fidelity !== 'depsurf'),
        allKernels: all,
        members: (k) => {
          let m = members.get(k.id);
          if (!m) members.set(k.id, (m = this.layoutOn(struct, k)));
          return m;
        },
        has: (name, k) => this.fieldOn(struct, name, k).present === true,
        typedef: (name, k) => this.typedef(name, [k])[0].value,
      });
    });
  }

  /** The members of `struct` on `k` whose offsets are known. */
  private layoutOn(struct: string, k: Kernel): LaidOutMember[] {
    const { s, i } = this.locate(k);
    const out: LaidOutMember[] = [];
    for (const [name, rows] of s.fields(struct)) {
      for (const r of rows) {
        const f = s.fieldRecord(r);
        if (!s.has(f.kset, i)) continue;
        if (f.offsetBits >= 0)
          out.push({ name, type: f.type, offsetBits: f.offsetBits, bitfieldBits: Math.max(0, f.bitfieldBits), size: f.size });
        break;
      }
    }
    return out;
  }

  /** An enum constant (e.g. `BPF_FUNC_ringbuf_output` of `bpf_func_id`) per kernel. */
  enumValue(enumName: string, name: string, kernels: readonly Kernel[]): ValueOnKernel[] {
    return this.answers.get('enumValue', [enumName, name], kernels, (enumName, name) => {
      return kernels.map((k) => {
        const { s, i } = this.locate(k);
        const v = s.view('enumv.value', 'f64');
        const big = s.view('enumv.big', 'u32');
        const ks = s.view('enumv.kset', 'u32');
        for (const r of s.enumRows(enumName, name)) {
          if (!s.has(ks[r], i)) continue;
          return { kernel: k, present: true, basis: this.basisOf(k), value: big[r] ? s.str(big[r]) : String(v[r]) };
        }
        return { kernel: k, present: false, basis: this.basisOf(k) };
      });
    });
  }

  /**
   * The enums that declare constant `name` on any of `kernels` (default: the built-in ones),
   * sorted; `''` stands for an anonymous enum. Uses the name index each store builds once.
   */
  enumOf(name: string, kernels: readonly Kernel[] = this.kernels.filter((k) => !k.user)): string[] {
    const out = new Set<string>();
    const seen = new Set<KernelStore>();
    for (const k of kernels) {
      const { s } = this.locate(k);
      if (seen.has(s)) continue;
      seen.add(s);
      const e = s.col('enumv.enum', 'u32');
      for (const r of s.rowsBy('enumv', 'name', name)) out.add(s.str(e[r]));
    }
    return [...out].sort();
  }

  /**
   * A BPF helper per kernel: the kernel's own `enum bpf_func_id` where it has one, else the
   * version floor from the facts.
   */
  helper(name: string, kernels: readonly Kernel[]): HelperAvailability {
    return this.answers.get('helper', [name], kernels, (name) => {
      const bare = name.replace(/^bpf_/, '');
      const fact = this.facts.helper(`bpf_${bare}`);
      const viaEnum = this.enumValue('bpf_func_id', `BPF_FUNC_${bare}`, kernels);
      return {
        helper: `bpf_${bare}`,
        ...(fact ? { id: fact.id, since: fact.since, gplOnly: fact.gpl_only, progTypes: fact.prog_types ?? [] } : {}),
        kernels: kernels.map((k, n) => {
          if (k.hasHelperEnum) return viaEnum[n];
          if (fact) return { kernel: k, present: compareVersions(k.version, fact.since) >= 0, basis: 'facts' as const };
          return { kernel: k, present: null, basis: 'facts' as const };
        }),
      };
    });
  }

  private enumTypeAvailability(enumName: string, facts: readonly EnumFact[], prefix: string, name: string, kernels: readonly Kernel[]) {
    const full = name.startsWith(prefix) ? name : `${prefix}${name.toUpperCase()}`;
    const fact = facts.find((f) => f.name === full);
    const viaEnum = this.enumValue(enumName, full, kernels);
    return {
      name: full,
      ...(fact ? { since: fact.since, configs: fact.configs ?? [] } : {}),
      kernels: kernels.map((k, n): KernelAnswer => {
        if (viaEnum[n].present || k.hasHelperEnum) return viaEnum[n];
        // Without the kernel's own BPF enums, only the facts' version floor can answer.
        if (fact) return { kernel: k, present: compareVersions(k.version, fact.since) >= 0, basis: 'facts' };
        return { kernel: k, present: null, basis: 'facts' };
      }),
    };
  }

  /** `BPF_PROG_TYPE_*` per kernel (`lsm` and `BPF_PROG_TYPE_LSM` both work). */
  progType(name: string, kernels: readonly Kernel[]) {
    return this.answers.get('progType', [name], kernels, (name) => {
      return this.enumTypeAvailability('bpf_prog_type', this.facts.progTypes, 'BPF_PROG_TYPE_', name, kernels);
    });
  }

  /** `BPF_MAP_TYPE_*` per kernel. */
  mapType(name: string, kernels: readonly Kernel[]) {
    return this.answers.get('mapType', [name], kernels, (name) => {
      return this.enumTypeAvailability('bpf_map_type', this.facts.mapTypes, 'BPF_MAP_TYPE_', name, kernels);
    });
  }

  /** `bpf_attach_type` values per kernel (`BPF_TRACE_FENTRY`, …). */
  attachType(name: string, kernels: readonly Kernel[]) {
    return this.answers.get('attachType', [name], kernels, (name) => {
      return this.enumTypeAvailability('bpf_attach_type', this.facts.attachTypes, '', name, kernels);
    });
  }

  /** `BPF_LINK_TYPE_*` per kernel. */
  linkType(name: string, kernels: readonly Kernel[]) {
    return this.answers.get('linkType', [name], kernels, (name) => {
      return this.enumTypeAvailability('bpf_link_type', this.facts.linkTypes, 'BPF_LINK_TYPE_', name, kernels);
    });
  }

  /** A kernel function (kprobe/fentry target) per kernel; unknown where the data has no function list. */
  func(name: string, kernels: readonly Kernel[]): FuncOnKernel[] {
    return this.answers.get('func', [name], kernels, (name) => {
      const tracked = this.depsurfTracks(name);
      const clones = this.facts.cloneOnly(name);
      return kernels.map((k) => {
        if (!k.hasFuncs) return { kernel: k, present: null, basis: this.basisOf(k) };
        const { s, i } = this.locate(k);
        const rows = s.rowsBy('func', 'name', name);
        const basis = this.basisOf(k);
        // DepSurf's function tables are not complete (mutex_unlock is in none of them): where no
        // DepSurf kernel lists a function, its absence there says nothing.
        const unknownHere = k.fidelity === 'depsurf' && !tracked;
        if (rows.length === 0) return { kernel: k, present: unknownHere ? null : false, basis };
        const r = rows[0];
        const listed = s.has(s.view('func.kset', 'u32')[r], i);
        const present = listed ? true : unknownHere ? null : false;
        const inlined = s.has(s.view('func.inlined', 'u32')[r], i);
        const kfunc = s.has(s.view('func.kfunc', 'u32')[r], i);
        const proto = s.rowsBy('proto', 'func', name).find((p) => s.has(s.col('proto.kset', 'u32')[p], i));
        const clone = present && clones?.kernels.has(k.name) ? clones.clone : undefined;
        return {
          kernel: k,
          present,
          basis,
          ...(inlined ? { inlined } : {}),
          ...(clone ? { clone } : {}),
          ...(kfunc ? { kfunc } : {}),
          ...(proto !== undefined ? { proto: s.str(s.col('proto.text', 'u32')[proto]) } : {}),
        };
      });
    });
  }

  /** Whether any DepSurf kernel of the database lists function `name` (memoised per name). */
  private depsurfTracks(name: string): boolean {
    let v = this.depsurfTrackedCache.get(name);
    if (v === undefined) {
      const depsurf = this.kernels.filter((k) => k.fidelity === 'depsurf' && k.hasFuncs);
      v = depsurf.some((k) => {
        const { s, i } = this.locate(k);
        const rows = s.rowsBy('func', 'name', name);
        return rows.length > 0 && s.has(s.view('func.kset', 'u32')[rows[0]], i);
      });
      this.depsurfTrackedCache.set(detached(name), v);
    }
    return v;
  }

  /**
   * A kfunc per kernel. Kernels whose BTF tags kfuncs (`bpf_kfunc` DECL_TAG) answer exactly;
   * on older ones a function of that name plus the facts' version floor answer.
   */
  kfunc(name: string, kernels: readonly Kernel[]): FuncOnKernel[] {
    return this.answers.get('kfunc', [name], kernels, (name) => {
      const fact = this.facts.kfunc(name);
      return this.func(name, kernels).map((f) => {
        if (f.present !== true) return f;
        if (f.kfunc || this.hasKfuncTags(f.kernel)) return { ...f, present: !!f.kfunc };
        if (fact) return { ...f, present: compareVersions(f.kernel.version, fact.since) >= 0, basis: 'facts' as const };
        return { ...f, present: null };
      });
    });
  }

  private readonly trustedCache = new Map<string, { kind: 'struct' | 'union'; name: string } | null>();
  /**
   * The struct or union a call's result points to when the verifier trusts that pointer (the
   * program may read it directly): helpers in the curated `trusted_return_helpers` table, and
   * kfuncs the facts flag `KF_ACQUIRE`, typed by their prototype in the newest kernel whose BTF
   * has one. Undefined for anything else.
   */
  trustedReturn(name: string): { kind: 'struct' | 'union'; name: string } | undefined {
    let r = this.trustedCache.get(name);
    if (r === undefined) {
      r = null;
      const helper = this.facts.trustedReturnHelper(name);
      const pointee = (text: string | undefined, fn: string) => {
        const m = text === undefined ? null : new RegExp(`^(?:const\\s+)?(struct|union)\\s+(\\w+)\\s*\\*\\s*${fn}\\b`).exec(text);
        return m ? { kind: m[1] as 'struct' | 'union', name: m[2] } : null;
      };
      if (helper) r = pointee(`${helper.returns} *${name}`, name);
      else if (this.facts.kfuncAcquires(name)) {
        const answers = this.func(name, this.kernels);
        for (let i = answers.length - 1; i >= 0 && !r; i--) r = pointee(answers[i].proto, name);
      }
      this.trustedCache.set(detached(name), r);
    }
    return r ?? undefined;
  }

  private kfuncTagCache = new Map<number, boolean>();
  /** Whether kernel `k`'s BTF tags any function as a kfunc. */
  hasKfuncTags(k: Kernel): boolean {
    let v = this.kfuncTagCache.get(k.id);
    if (v === undefined) {
      const { s, i } = this.locate(k);
      const col = s.col('func.kfunc', 'u32');
      const seen = new Set<number>();
      v = false;
      for (let r = 0; r < col.length && !v; r++) {
        if (col[r] === 0 || seen.has(col[r])) continue;
        seen.add(col[r]);
        v = s.has(col[r], i);
      }
      this.kfuncTagCache.set(k.id, v);
    }
    return v;
  }

  /**
   * A tracepoint per kernel, by event name (`sched_switch` or `sched/sched_switch`): BTF's
   * `btf_trace_<event>` typedefs (5.5+) or DepSurf's tracepoint table; unknown elsewhere.
   */
  tracepoint(name: string, kernels: readonly Kernel[]): (KernelAnswer & { class?: string })[] {
    return this.answers.get('tracepoint', [name], kernels, (name) => {
      const event = name.includes('/') ? name.slice(name.lastIndexOf('/') + 1) : name;
      return kernels.map((k) => {
        const { s, i } = this.locate(k);
        const basis = this.basisOf(k);
        const ks = s.col('tp.kset', 'u32');
        const row = s.rowsBy('tp', 'event', event).find((r) => s.has(ks[r], i));
        if (row !== undefined) {
          const cls = s.str(s.col('tp.class', 'u32')[row]);
          return { kernel: k, present: true, basis, ...(cls ? { class: cls } : {}) };
        }
        return { kernel: k, present: this.hasTracepointData(k) ? false : null, basis };
      });
    });
  }

  private tpCache = new Map<number, boolean>();
  /** Whether kernel `k`'s data has tracepoint records at all (else a missing one is unknown, not absent). */
  hasTracepointData(k: Kernel): boolean {
    let v = this.tpCache.get(k.id);
    if (v === undefined) {
      const { s, i } = this.locate(k);
      v =
        s.rowsBy('tp', 'event', 'sys_enter').some((r) => s.has(s.col('tp.kset', 'u32')[r], i)) ||
        s.rowsBy('tp', 'event', 'sched_switch').some((r) => s.has(s.col('tp.kset', 'u32')[r], i));
      this.tpCache.set(k.id, v);
    }
    return v;
  }

  /** An LSM hook (`file_open`) per kernel: its `bpf_lsm_<hook>` attach point. */
  lsmHook(hook: string, kernels: readonly Kernel[]): FuncOnKernel[] {
    return this.answers.get('lsmHook', [hook], kernels, (hook) => {
      return this.func(`bpf_lsm_${hook.replace(/^bpf_lsm_/, '')}`, kernels);
    });
  }

  /**
   * A CONFIG option per kernel: its value (`y`, `m`, `n`, or a string), `unset` when the config
   * does not mention it (off, or an option that kernel does not have), unknown where no config exists.
   */
  config(name: string, kernels: readonly Kernel[]): ValueOnKernel[] {
    return this.answers.get('config', [name], kernels, (name) => {
      const full = name.startsWith('CONFIG_') ? name : `CONFIG_${name}`;
      return kernels.map((k): ValueOnKernel => {
        if (!k.hasConfig) return { kernel: k, present: null, basis: 'config' };
        const { s, i } = this.locate(k);
        const ks = s.col('config.kset', 'u32');
        const row = s.rowsBy('config', 'name', full).find((r) => s.has(ks[r], i));
        // `unset`: the config does not mention the option (it may not exist in that kernel yet).
        const value = row === undefined ? 'unset' : s.str(s.col('config.value', 'u32')[row]);
        return { kernel: k, present: value !== 'n' && value !== 'unset', basis: 'config', value };
      });
    });
  }

  /**
   * What a `SEC("…")` name needs on each kernel: its program type, attach type, the target it
   * names (function, tracepoint, LSM hook) and the facts' version floor for extra requirements.
   * CONFIG options are reported, not required, since a kernel without a config cannot answer.
   */
  section(sec: string, kernels: readonly Kernel[]): SectionAvailability {
    return this.answers.get('section', [sec], kernels, (sec) => {
      const m = this.facts.section(sec);
      if (!m)
        return {
          sec,
          configs: [],
          kernels: kernels.map((k) => ({
            kernel: k,
            present: null,
            basis: 'facts' as const,
            reasons: [`libbpf does not know SEC("${sec}")`],
          })),
        };
      const f = m.fact;
      const prog = f.prog_type ? this.progType(f.prog_type, kernels).kernels : undefined;
      // libbpf drops an optional expected attach type on kernels that lack it.
      const attach = f.attach_type && !f.flags?.includes('attachable_opt') ? this.attachType(f.attach_type, kernels).kernels : undefined;
      const floorOnly = f.since_kernel_reason !== f.prog_type && f.since_kernel_reason !== f.attach_type;
      const target = this.sectionTarget(f.prefix, m.target, kernels);
      return {
        sec,
        prefix: f.prefix,
        ...(f.prog_type ? { progType: f.prog_type } : {}),
        ...(f.attach_type ? { attachType: f.attach_type } : {}),
        ...(m.target ? { target: m.target } : {}),
        sinceKernel: f.since_kernel,
        configs: f.configs ?? [],
        kernels: kernels.map((k, n) => {
          const reasons: string[] = [];
          let present: boolean | null = true;
          let basis: Basis = this.basisOf(k);
          const need = (a: KernelAnswer | undefined, what: string) => {
            if (!a || a.present === true) return;
            if (a.present === false) {
              present = false;
              reasons.push(`${what} missing`);
            } else if (present === true) present = null;
            if (a.basis === 'facts') basis = 'facts';
          };
          need(prog?.[n], f.prog_type ?? '');
          need(attach?.[n], f.attach_type ?? '');
          // Data sections (`license`, `.maps`) have no kernel floor.
          if (floorOnly && f.since_kernel && compareVersions(k.version, f.since_kernel) < 0) {
            present = false;
            basis = 'facts';
            reasons.push(`${f.since_kernel_reason ?? `SEC("${f.prefix}")`} needs ${f.since_kernel}`);
          }
          if (target) need(target[n], target[n].what);
          return { kernel: k, present, basis, reasons };
        }),
      };
    });
  }

  private sectionTarget(prefix: string, target: string, kernels: readonly Kernel[]): (KernelAnswer & { what: string })[] | undefined {
    if (!target) return undefined;
    const base = prefix.replace(/\.s$/, '');
    if (base === 'lsm') return this.lsmHook(target, kernels).map((a) => ({ ...a, what: `LSM hook bpf_lsm_${target}` }));
    if (['kprobe', 'kretprobe', 'fentry', 'fexit', 'fmod_ret'].includes(base)) {
      const fn = target.replace(/\+\d+$/, '');
      return this.func(fn, kernels).map((a) => ({
        ...a,
        present: a.present && !a.inlined ? a.present : a.present === null ? null : false,
        what: `function ${fn}`,
      }));
    }
    if (base === 'tracepoint' || base === 'tp' || base === 'raw_tracepoint' || base === 'raw_tp' || base === 'tp_btf') {
      return this.tracepoint(target, kernels).map((a) => ({ ...a, what: `tracepoint ${target}` }));
    }
    return undefined;
  }

  /** Typedef target per kernel (e.g. `btf_trace_sched_switch`). */
  typedef(name: string, kernels: readonly Kernel[]): ValueOnKernel[] {
    return this.answers.get('typedef', [name], kernels, (name) => {
      return kernels.map((k) => {
        const { s, i } = this.locate(k);
        const ks = s.col('typedef.kset', 'u32');
        const row = s.rowsBy('typedef', 'name', name).find((r) => s.has(ks[r], i));
        return row === undefined
          ? { kernel: k, present: k.fidelity === 'depsurf' ? null : false, basis: this.basisOf(k) }
          : { kernel: k, present: true, basis: this.basisOf(k), value: s.str(s.col('typedef.type', 'u32')[row]) };
      });
    });
  }

  /** Whether any built-in kernel has a struct or union called `name`. */
  hasAggregate(name: string): boolean {
    let v = this.hasAggregateCache.get(name);
    if (v === undefined) this.hasAggregateCache.set(detached(name), (v = this.locate(this.kernels[0]).s.aggregate(name).length > 0));
    return v;
  }
  private readonly hasAggregateCache = new Map<string, boolean>();

  /**
   * The type of `struct.field` on some built-in kernel (the first that has it), for resolving
   * member chains; the aggregate it continues into is `ref`.
   */
  fieldShape(struct: string, field: string): { type: string; ref: string; refKind?: 'struct' | 'union' } | undefined {
    const { s } = this.locate(this.kernels[0]);
    const rows = s.fieldRows(struct, field);
    if (!rows || rows.length === 0) return undefined;
    const f = s.fieldRecord(rows[rows.length - 1]);
    const refKind = f.ref ? s.aggregate(f.ref)[0]?.kind : undefined;
    return { type: f.type, ref: f.ref, ...(refKind ? { refKind } : {}) };
  }

  /**
   * Every distinct type of `struct.field` across the built-in kernels, {@link fieldShape}'s first:
   * a member whose type changed (`mm_struct.rss_stat`, a struct before 6.2 and an array since)
   * has one shape per declaration, and a member chain tells which one it was compiled against.
   */
  fieldShapes(struct: string, field: string): { type: string; ref: string; refKind?: 'struct' | 'union' }[] {
    const { s } = this.locate(this.kernels[0]);
    const rows = s.fieldRows(struct, field);
    if (!rows || rows.length === 0) return [];
    const out: { type: string; ref: string; refKind?: 'struct' | 'union' }[] = [];
    for (let i = rows.length - 1; i >= 0; i--) {
      const f = s.fieldRecord(rows[i]);
      if (out.some((o) => o.type === f.type && o.ref === f.ref)) continue;
      const refKind = f.ref ? s.aggregate(f.ref)[0]?.kind : undefined;
      out.push({ type: f.type, ref: f.ref, ...(refKind ? { refKind } : {}) });
    }
    return out;
  }

  /** Names of all structs and unions in any built-in kernel. */
  aggregateNames(): string[] {
    return [...this.locate(this.kernels[0]).s.aggregateNames()];
  }
}

/** Fidelity notes a report should show beside an absence. */
export function fidelityCaveat(f: Fidelity): string | undefined {
  switch (f) {
    case 'btf-minimal-config':
      return 'minimal test config: may only be configured out';
    case 'btf-types-only':
      return 'BTF without function records';
    case 'depsurf':
      return 'no offsets or bitfield widths in the data';
    default:
      return undefined;
  }
}
