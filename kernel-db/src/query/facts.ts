/**
 * The curated fact tables (helpers, program/attach/map/link types, SEC prefixes, features, CO-RE
 * macros, BCC conventions, CONFIG options, kfuncs), as copied into `kernel-db/data/facts.json.gz`
 * by the builder, plus the few facts the analysis needs that those tables do not record
 * (`kernel-db/curated/analysis-facts.json`: helpers returning trusted BTF pointers, CONFIG
 * options implied or exempted). Each entry keeps its `source`. Rules ask here instead of typing
 * kernel versions or names into their code.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import ANALYSIS_FACTS from '../../curated/analysis-facts.json';
import CLONE_ONLY from '../../curated/clone-only-functions.json';
import { compareVersions } from '../version';
import { detached } from '../strings';

/** A helper (`bpf_*`) from the facts. */
export interface HelperFact {
  readonly name: string;
  readonly id: number;
  readonly since: string;
  readonly gpl_only: boolean;
  readonly proto: string;
  readonly prog_types?: string[];
  readonly prog_type_details?: Record<string, { since?: string; configs?: string[] }>;
  readonly configs?: string[];
  readonly replaced_by?: string;
  readonly deprecated?: boolean;
  readonly uncertain?: boolean;
  readonly source: string;
}

/** A value of `bpf_prog_type`, `bpf_map_type`, `bpf_attach_type` or `bpf_link_type`. */
export interface EnumFact {
  readonly name: string;
  readonly value: number;
  readonly since: string;
  readonly configs?: string[];
  readonly prog_types?: string[];
  readonly uncertain?: boolean;
  readonly source: string;
}

/** A libbpf `SEC()` definition. */
export interface SectionFact {
  readonly prefix: string;
  readonly match: string;
  readonly prog_type: string | null;
  readonly attach_type: string | null;
  /** Absent for the ELF data sections (`license`, `maps`, `.maps`, `version`, …): they are not programs. */
  readonly kind?: 'elf_data_section';
  readonly flags?: string[];
  /** Absent for most data sections (`.rodata` and the like have one: global data came in 5.2). */
  readonly since_kernel?: string;
  readonly since_kernel_reason?: string;
  readonly since_libbpf: string;
  readonly configs?: string[];
  readonly attach_type_since?: string;
  readonly notes?: string;
  readonly uncertain?: boolean;
  readonly source: string;
}

/** A kfunc. */
export interface KfuncFact {
  readonly name: string;
  readonly since: string;
  readonly flags: string[];
  readonly prog_types: Record<string, { since?: string }>;
  readonly source: string;
}

/** A verifier or kernel feature. */
export interface FeatureFact {
  readonly id: string;
  readonly since: string;
  readonly configs?: string[];
  readonly how_to_detect_in_source?: string;
  readonly notes?: string;
  readonly source: string;
}

/** A CONFIG option. */
export interface ConfigFact {
  readonly name: string;
  readonly purpose?: string;
  readonly since?: string;
  readonly uncertain?: boolean;
  readonly source: string;
}

/** A helper whose result the verifier types as a trusted BTF pointer (`RET_PTR_TO_BTF_ID_TRUSTED`). */
export interface TrustedReturnFact {
  readonly name: string;
  /** `struct task_struct`. */
  readonly returns: string;
  readonly source: string;
}

/** `kernel-db/curated/clone-only-functions.json` (written by `kernel-db/scripts/clone-only.ts`). */
interface CloneOnlyFacts {
  readonly source: string;
  /** The kernels whose kallsyms were read. */
  readonly kernels: readonly string[];
  /** Function → one clone's suffix (`.isra.0`), then the indexes (into `kernels`) of the kernels where only clones exist. */
  readonly functions: Readonly<Record<string, readonly (string | number)[]>>;
}

/** The analysis' own curated tables (`kernel-db/curated/analysis-facts.json`). */
export interface AnalysisFacts {
  /** Per architecture, the version from which every syscall has an architecture wrapper (`__x64_sys_X`). */
  readonly syscall_wrappers: { readonly since: Readonly<Record<string, string>>; readonly source: string };
  readonly trusted_return_helpers: readonly TrustedReturnFact[];
  /** Options without which there is no BPF at all: they say nothing about one program. */
  readonly implied_configs: readonly { readonly name: string; readonly source: string }[];
  /** Options every trampoline attached to a kernel function needs, for the program types listed. */
  readonly trampoline_configs: readonly { readonly name: string; readonly prog_types: readonly string[]; readonly source: string }[];
  /** Helpers the verifier offers only to sleepable programs (`prog->aux->sleepable ? &proto : NULL`). */
  readonly sleepable_only_helpers: readonly { readonly name: string; readonly source: string }[];
  /**
   * Per-program-type floors the shared helper table does not give: from `since` on, the program
   * types listed may call the helpers listed (before, their verifier has no proto for them).
   */
  readonly helper_prog_type_floors: readonly {
    readonly helpers: readonly string[];
    readonly prog_types: readonly string[];
    readonly since: string;
    readonly source: string;
  }[];
  /** Program types whose load rejects an expected attach type the kernel lacks; for others only attaching fails. */
  readonly load_checked_attach_types: { readonly prog_types: readonly string[]; readonly source: string };
  /** Options a section's facts list that a section with this prefix and target does not need. */
  readonly config_exemptions: readonly {
    readonly section_prefix: string;
    readonly target_prefix: string;
    readonly config: string;
    readonly source: string;
  }[];
  /**
   * How each distribution installs the kernel headers BCC compiles against on the host: the
   * distribution families it serves (`KernelMeta.distro`), a label and the commands.
   */
  readonly kernel_headers_install: {
    readonly rows: readonly { readonly families: readonly string[]; readonly label: string; readonly commands: readonly string[] }[];
    /** Distributions that ship no headers package at all. */
    readonly without: readonly string[];
    readonly source: string;
  };
}

/** All fact tables, with lookups by name built once. */
export class Facts {
  readonly helpers: readonly HelperFact[];
  readonly progTypes: readonly EnumFact[];
  readonly attachTypes: readonly EnumFact[];
  readonly mapTypes: readonly EnumFact[];
  readonly linkTypes: readonly EnumFact[];
  readonly sections: readonly SectionFact[];
  readonly features: readonly FeatureFact[];
  readonly kfuncs: readonly KfuncFact[];
  readonly configs: readonly ConfigFact[];
  readonly coreMacros: readonly Record<string, unknown>[];
  readonly bccConventions: readonly Record<string, unknown>[];
  /** The analysis' own curated tables, the same for every database. */
  readonly analysis: AnalysisFacts = ANALYSIS_FACTS;
  private readonly helperByName: Map<string, HelperFact>;
  private readonly kfuncByName: Map<string, KfuncFact>;

  constructor(tables: Record<string, unknown>) {
    const arr = <T>(k: string) => (Array.isArray(tables[k]) ? (tables[k] as T[]) : []);
    this.helpers = arr<HelperFact>('helpers');
    this.progTypes = arr<EnumFact>('prog_types');
    this.attachTypes = arr<EnumFact>('attach_types');
    this.mapTypes = arr<EnumFact>('map_types');
    this.linkTypes = arr<EnumFact>('link_types');
    this.sections = arr<SectionFact>('sections');
    this.features = arr<FeatureFact>('features');
    this.kfuncs = arr<KfuncFact>('kfuncs');
    this.configs = arr<ConfigFact>('configs');
    this.coreMacros = arr<Record<string, unknown>>('core_macros');
    this.bccConventions = arr<Record<string, unknown>>('bcc_conventions');
    this.helperByName = new Map(this.helpers.map((h) => [h.name, h]));
    this.kfuncByName = new Map(this.kfuncs.map((h) => [h.name, h]));
  }

  /**
   * Loads `facts.json.gz`, read on libuv's threads and decompressed and parsed on the main thread.
   * The language server starts this with the store's read and the grammar's compile, and the main
   * thread is otherwise idle once the bundle is evaluated; a decompression on zlib's threads came
   * back last, behind the store's reads in the same thread pool (the database was ready ~25 ms
   * later, medians of eleven starts).
   */
  static async loadAsync(path: string): Promise<Facts> {
    return new Facts(JSON.parse(gunzipSync(await readFile(path)).toString('utf8')));
  }

  /** Loads `facts.json.gz`. */
  static load(path: string): Facts {
    return new Facts(JSON.parse(gunzipSync(readFileSync(path)).toString('utf8')));
  }

  helper(name: string): HelperFact | undefined {
    return this.helperByName.get(name);
  }

  kfunc(name: string): KfuncFact | undefined {
    return this.kfuncByName.get(name);
  }

  private featureById?: Map<string, FeatureFact>;
  feature(id: string): FeatureFact | undefined {
    this.featureById ??= new Map(this.features.map((f) => [f.id, f]));
    return this.featureById.get(id);
  }

  /**
   * The kernel version a feature came in (`bounded_loops` → `5.3`), or undefined when the facts
   * do not have the feature (or give it no version): a rule then stays silent rather than guess.
   */
  featureSince(id: string): string | undefined {
    return this.feature(id)?.since ?? undefined;
  }

  private callbackSet?: ReadonlySet<string>;
  /**
   * Whether a helper takes a callback function: its prototype (the UAPI's, as in
   * `bpf_helper_defs.h`) has a `callback_fn` parameter, the name the kernel's helper
   * documentation gives every `ARG_PTR_TO_FUNC` argument (`bpf_loop`, `bpf_for_each_map_elem`,
   * `bpf_timer_set_callback`, `bpf_find_vma`, `bpf_user_ringbuf_drain`).
   */
  takesCallback(helper: string): boolean {
    this.callbackSet ??= new Set(this.helpers.filter((h) => /[(,]\s*[^,()]*\bcallback_fn\s*[,)]/.test(h.proto ?? '')).map((h) => h.name));
    return this.callbackSet.has(helper);
  }

  /** The helpers that take a callback function (see {@link takesCallback}). */
  callbackHelpers(): string[] {
    return this.helpers.filter((h) => this.takesCallback(h.name)).map((h) => h.name);
  }

  private trustedByName?: Map<string, TrustedReturnFact>;
  /** The curated row of a helper whose result is a trusted BTF pointer. */
  trustedReturnHelper(name: string): TrustedReturnFact | undefined {
    this.trustedByName ??= new Map(this.analysis.trusted_return_helpers.map((h) => [h.name, h]));
    return this.trustedByName.get(name);
  }

  /**
   * The kernels on which function `name` exists only as a compiler clone (`name.isra.0`), with
   * one such clone's symbol, from the booted kernels' kallsyms (`kernel-db/curated/clone-only-functions.json`).
   */
  cloneOnly(name: string): { readonly clone: string; readonly kernels: ReadonlySet<string> } | undefined {
    // Decoded per name on first use: decoding all of them (thousands) was ~6 ms of a cold start.
    if (this.clones.has(name)) return this.clones.get(name);
    const data = CLONE_ONLY as CloneOnlyFacts;
    // Kept for the process: the name may be a slice of a document, which it must not keep alive.
    name = detached(name);
    const row = Object.hasOwn(data.functions, name) ? data.functions[name] : undefined;
    const entry = row && { clone: `${name}${row[0]}`, kernels: new Set(row.slice(1).map((i) => data.kernels[i as number])) };
    this.clones.set(name, entry);
    return entry;
  }
  private readonly clones = new Map<string, { clone: string; kernels: ReadonlySet<string> } | undefined>();

  /** Whether the verifier offers the helper only to sleepable programs (the curated list). */
  sleepableOnlyHelper(name: string): boolean {
    return this.analysis.sleepable_only_helpers.some((h) => h.name === name);
  }

  /**
   * The first version in which program type `pt` may call `helper`, from the curated floors the
   * shared table lacks (undefined when none applies).
   */
  helperProgTypeFloor(helper: string, pt: string): string | undefined {
    return this.analysis.helper_prog_type_floors.find((f) => f.helpers.includes(helper) && f.prog_types.includes(pt))?.since;
  }

  /** Whether the facts flag a kfunc `KF_ACQUIRE`: it returns a referenced, trusted pointer. */
  kfuncAcquires(name: string): boolean {
    return this.kfunc(name)?.flags.includes('KF_ACQUIRE') ?? false;
  }

  /**
   * The newest helper (by the facts' floors) among those `has` says a kernel has: the version
   * a kernel with backported helpers counts as, at least.
   */
  newestHelperSince(has: (helper: HelperFact) => boolean, floor: string): string {
    let v = floor;
    for (const h of this.helpers) if (compareVersions(h.since, v) > 0 && has(h)) v = h.since;
    return v;
  }

  /**
   * The SEC definition libbpf would pick for `sec` (e.g. `lsm/file_open`, `kprobe/do_sys_open`,
   * `xdp`), and the attach target written after the prefix, if any. libbpf matches the longest
   * prefix; `exact or exact/+suffix` entries match `prefix` and `prefix/…`.
   */
  private readonly sectionCache = new Map<string, { fact: SectionFact; target: string } | undefined>();
  section(sec: string): { fact: SectionFact; target: string } | undefined {
    if (this.sectionCache.has(sec)) return this.sectionCache.get(sec);
    const r = this.findSection(sec);
    if (this.sectionCache.size > 4096) this.sectionCache.clear();
    this.sectionCache.set(detached(sec), r);
    return r;
  }

  private findSection(sec: string): { fact: SectionFact; target: string } | undefined {
    let best: { fact: SectionFact; target: string } | undefined;
    for (const f of this.sections) {
      let target: string | undefined;
      if (sec === f.prefix) target = '';
      else if (f.match !== 'exact' && sec.startsWith(`${f.prefix}/`)) target = sec.slice(f.prefix.length + 1);
      else if (f.match === 'prefix' && sec.startsWith(f.prefix)) target = sec.slice(f.prefix.length);
      if (target !== undefined && (!best || f.prefix.length > best.fact.prefix.length)) best = { fact: f, target };
    }
    return best;
  }
}
