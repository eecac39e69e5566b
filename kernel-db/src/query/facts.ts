/**
 * The curated fact tables (helpers, program/attach/map/link types, SEC prefixes, features, CO-RE
 * macros, BCC conventions, CONFIG options, kfuncs), as copied into `kernel-db/data/facts.json.gz`
 * by the builder. Each entry keeps its `source`.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

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
  readonly flags: string[];
  readonly since_kernel: string;
  readonly since_kernel_reason: string;
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
   * The SEC definition libbpf would pick for `sec` (e.g. `lsm/file_open`, `kprobe/do_sys_open`,
   * `xdp`), and the attach target written after the prefix, if any. libbpf matches the longest
   * prefix; `exact or exact/+suffix` entries match `prefix` and `prefix/…`.
   */
  private readonly sectionCache = new Map<string, { fact: SectionFact; target: string } | undefined>();
  section(sec: string): { fact: SectionFact; target: string } | undefined {
    if (this.sectionCache.has(sec)) return this.sectionCache.get(sec);
    const r = this.findSection(sec);
    if (this.sectionCache.size > 4096) this.sectionCache.clear();
    this.sectionCache.set(sec, r);
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
