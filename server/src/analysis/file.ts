/**
 * The per-file model: includes, CO-RE regions, struct definitions and where their layout comes
 * from, typedefs, globals, and the functions with their `SEC()` program context.
 */
import { createHash } from 'node:crypto';
import type { Node, Tree } from 'web-tree-sitter';
import { decodeStringBody, maskBpfMacros, type BpfMacroSite, type SectionSite } from '../parse/bpfMacros';
import { type DirectiveToken, lexC } from '../parse/lexer';
import { PROGRAM_WRAPPERS } from '../parse/macroTables';
import { applyDeclarator, fromSpecifier, type CType } from './ctypes';
import { classifyMacros, type FunctionMacro, parseFunctionMacro } from './functionMacros';
import { detached, OwnedCache, TEXT_KEYED } from './memo';

/** A function-like macro as written (see functionMacros.ts). */
type RawFunctionMacro = NonNullable<ReturnType<typeof parseFunctionMacro>>;

/** A `#include`. */
export interface Include {
  readonly path: string;
  readonly system: boolean;
  readonly node: Node;
}

/** A struct or union defined in the file (or a local header). */
export interface StructDef {
  readonly name: string;
  readonly kind: 'struct' | 'union';
  /** Declared with `preserve_access_index` or inside a `#pragma clang attribute push` region. */
  readonly core: boolean;
  readonly fields: Map<string, { type: CType; node: Node; bitfield: boolean }>;
  readonly node: Node;
  /** The file that defines it (for related information). */
  readonly uri: string;
}

/** A function definition with its program context. */
export interface FunctionInfo {
  /** The program's name (for `BPF_KPROBE(name, …)` the first argument). */
  readonly name: string;
  readonly node: Node;
  readonly body: Node | null;
  /** The `SEC("…")` string, when the function is a BPF program. */
  readonly sec?: string;
  /** Wrapper macro, e.g. `BPF_KPROBE`, when the program is declared through one. */
  readonly wrapper?: string;
  readonly params: { name: string; type: CType; node: Node }[];
  /** The names the body calls (each name followed by `(` in its text), once each. */
  readonly calls: readonly string[];
  /** Where the body starts and ends (offsets, known without reading the tree), if it has one. */
  readonly bodySpan: { readonly start: number; readonly end: number } | null;
}

/** An `extern … __ksym` (a kfunc or kernel variable) or `extern … __kconfig` declaration. */
export interface Extern {
  readonly name: string;
  readonly kind: 'ksym' | 'kconfig';
  /** Declares a function (a kfunc), not a variable. */
  readonly isFunction: boolean;
  /** Declared `__weak` (or `__attribute__((weak))`): libbpf loads the program where it is missing. */
  readonly weak: boolean;
  /** The declaration, from `extern` to `;`. */
  readonly node: Node;
  /** Offset just after `__ksym` / `__kconfig`, where `__weak` goes. */
  readonly attrEnd: number;
}

/** What analysis knows about one file. */
export interface FileModel {
  readonly uri: string;
  readonly text: string;
  readonly includes: Include[];
  /** Includes vmlinux.h (directly or through a local header). */
  readonly vmlinux: boolean;
  /** Includes kernel headers (`<linux/…>`, `<asm/…>`, `<net/…>`). */
  readonly kernelHeaders: boolean;
  /** `#define BPF_NO_PRESERVE_ACCESS_INDEX` before vmlinux.h: its types are not relocatable. */
  readonly noPreserveAccessIndex: boolean;
  /** Includes `<bpf/bpf_core_read.h>` (directly or through a local header). */
  readonly coreReadIncluded: boolean;
  /**
   * The local headers this model was built from: each include's path and its fingerprint (or
   * `-` where it could not be read). Part of every cache key that depends on the model.
   */
  readonly headers: string;
  /** A BCC program (compiled on the host against its headers; derefs rewritten to probe reads). */
  readonly bcc: boolean;
  readonly structs: Map<string, StructDef>;
  readonly typedefs: Map<string, CType>;
  readonly globals: Map<string, { type: CType; node: Node }>;
  /**
   * Names of the file-scope variables the local headers declare (Tracee's vmlinux.h declares
   * `const int TRACE_EVENT_FL_TRACEPOINT = …`): the program's own, whatever the kernel names so.
   */
  readonly headerGlobals: ReadonlySet<string>;
  readonly functions: FunctionInfo[];
  /** The tree's top-level items (the root's named children), asked of the tree once per model. */
  readonly topLevel: readonly Node[];
  /** The program's license string (`char LICENSE[] SEC("license") = "GPL";`), if declared. */
  readonly license?: string;
  /** `extern … __ksym` and `extern … __kconfig` declarations, by name. */
  readonly externs: ReadonlyMap<string, Extern>;
  /**
   * Object-like macros the file and its local headers define, name → replacement text (the last
   * definition wins): a member spelled with one (`#define sk_family __sk_common.skc_family`) is
   * not the member it names.
   */
  readonly macros: ReadonlyMap<string, string>;
  /**
   * Where each macro of {@link macros} becomes defined, for `#if` evaluation: the offset of its
   * `#define` (or of the `#include` that brought it; -1 for `-D`), and whether a definition sits
   * under a condition (other than an include guard), or is `#undef`ined, so it may not be defined.
   */
  readonly macroSites: ReadonlyMap<string, MacroSite>;
  /**
   * Function-like macros of the file and its headers, with the parameters each reads through a
   * probe read (`READ_KERN(task->pid)` reads `task->pid` with `bpf_probe_read`).
   */
  readonly functionMacros: ReadonlyMap<string, FunctionMacro>;
  /** The file's preprocessor directives, from the lexer. */
  readonly directives: readonly DirectiveToken[];
  /** What `offsetof(T, m)` means in the file's functions (see {@link OffsetofMeaning}). */
  readonly offsetof: OffsetofMeaning;
  /** The steps that define `offsetof`, in order, the local headers' included (for headers). */
  readonly offsetofSteps: readonly OffsetofStep[];
  /**
   * Functions of the file and its local headers whose whole body returns a CO-RE existence check
   * (`static bool has_x(void) { return bpf_core_type_exists(struct x); }`): a call of one is that
   * guard. Name → the check's text, and whether it is negated.
   */
  readonly guardFunctions: ReadonlyMap<string, GuardFunction>;
  /** The BPF macro sites of the file (SEC, map members, BCC maps, kfunc externs, loops…). */
  sites(): readonly BpfMacroSite[];
  /** How the build compiles the file (its project's `-D`, `-U`, `-include`, architecture). */
  readonly build: BuildContext;
}

/** Where a macro becomes defined (see {@link FileModel.macroSites}). */
export interface MacroSite {
  readonly offset: number;
  readonly conditional: boolean;
}

/**
 * What `offsetof(T, m)` expands to: `builtin` — `__builtin_offsetof`, a compile-time constant
 * (`<stddef.h>` included before libbpf's headers); `relocatable` — libbpf's
 * `((unsigned long)&((TYPE *)0)->MEMBER)` (bpf_helpers.h defines it when `offsetof` is not
 * defined yet), a member access clang relocates like any other on a type with
 * `preserve_access_index`; `unknown` — anything else, or not known.
 */
export type OffsetofMeaning = 'builtin' | 'relocatable' | 'unknown';

/** One thing that (re)defines `offsetof`, in include order. */
export type OffsetofStep =
  /** `#include <bpf/bpf_helpers.h>`: `#ifndef offsetof` … libbpf's definition. */
  | { readonly kind: 'libbpf' }
  /** `#include <stddef.h>`: `__builtin_offsetof`; over an earlier definition only in older clangs. */
  | { readonly kind: 'stddef' }
  /** `#define offsetof(…) …`, possibly under a condition. */
  | { readonly kind: 'define'; readonly means: OffsetofMeaning; readonly conditional: boolean }
  | { readonly kind: 'undef'; readonly conditional: boolean };

/**
 * What `offsetof` means after `steps`. Clang's <stddef.h> defined it unconditionally up to
 * clang 17 and only where it is not defined yet since clang 18 (`__stddef_offsetof.h`), so
 * <stddef.h> after another definition leaves it unknown; a conditional definition is known only
 * where it agrees with the one before it.
 */
export function offsetofMeaning(steps: readonly OffsetofStep[]): OffsetofMeaning {
  let now: OffsetofMeaning | undefined;
  for (const st of steps) {
    if (st.kind === 'libbpf') now ??= 'relocatable';
    else if (st.kind === 'stddef') now = now === undefined || now === 'builtin' ? 'builtin' : 'unknown';
    else if (st.kind === 'define') now = !st.conditional || now === st.means ? st.means : 'unknown';
    else now = st.conditional ? 'unknown' : undefined;
  }
  return now ?? 'unknown';
}

/** What a `#define offsetof(TYPE, MEMBER) …` replacement computes. */
function offsetofDefinition(replacement: string): OffsetofMeaning {
  if (/\b__builtin_offsetof\b/.test(replacement)) return 'builtin';
  // A member access through a null pointer of the type: `&((TYPE *)0)->MEMBER`.
  if (/&\s*\(\s*\(\s*\w+\s*\*\s*\)\s*0\s*\)\s*->/.test(replacement)) return 'relocatable';
  return 'unknown';
}

/** A function that only returns an existence check. */
export interface GuardFunction {
  readonly call: string;
  readonly negated: boolean;
}

/** What a local header contributes (parsed once and cached by the host). */
export interface HeaderModel {
  /** Changes whenever the header's text or a header it includes changes (or appears, or goes). */
  readonly fingerprint: string;
  readonly vmlinux: boolean;
  readonly kernelHeaders: boolean;
  readonly coreReadIncluded: boolean;
  readonly noPreserveAccessIndex: boolean;
  readonly structs: Map<string, StructDef>;
  readonly typedefs: Map<string, CType>;
  /** Names of the file-scope variables the header (and its includes) declare. */
  readonly globals: ReadonlySet<string>;
  readonly macros: ReadonlyMap<string, string>;
  /** Function-like macros the header (and its includes) define, unclassified. */
  readonly functionMacros: ReadonlyMap<string, RawFunctionMacro>;
  /** The macros whose definition in the header (or its includes) may not apply: see {@link FileModel.macroSites}. */
  readonly conditionalMacros: ReadonlySet<string>;
  readonly guardFunctions: ReadonlyMap<string, GuardFunction>;
  /** What the header (and its includes) do to `offsetof`, in order (none when absent). */
  readonly offsetofSteps?: readonly OffsetofStep[];
}

/**
 * Resolves an include of a file to that header's model, if it can be read: `#include "x.h"`
 * (`system` false) or `#include <x.h>` (`system` true, found only through the project's include
 * paths).
 */
export type IncludeResolver = (fromUri: string, path: string, system: boolean) => HeaderModel | undefined;

/**
 * How the build compiles the file, from its project (empty without one): the macros of `-D`
 * (name → value) and the names `-U` removes, the headers `-include` reads first, and the
 * architecture of `-D__TARGET_ARCH_<arch>`.
 */
export interface BuildContext {
  readonly defines: ReadonlyMap<string, string>;
  readonly undefines: readonly string[];
  readonly forced: readonly string[];
  readonly arch?: string;
  /** The program is compiled by BCC (a BCC tool's Python hands it over, or the loader setting says so). */
  readonly bcc?: boolean;
}

/** The build context of a file without a project. */
export const NO_BUILD: BuildContext = { defines: new Map(), undefines: [], forced: [] };

const KERNEL_HEADER = /^(linux|asm|asm-generic|net|uapi|trace|generated)\//;

/** Builds the model of a parsed file. */
export function buildFileModel(
  uri: string,
  text: string,
  tree: Tree,
  resolve?: IncludeResolver,
  knownSites?: readonly BpfMacroSite[],
  build: BuildContext = NO_BUILD,
): FileModel {
  const src = (n: Node) => text.slice(n.startIndex, n.endIndex);
  const root = tree.rootNode;
  const includes: Include[] = [];
  const structs = new Map<string, StructDef>();
  const typedefs = new Map<string, CType>();
  const globals = new Map<string, { type: CType; node: Node }>();
  const headerGlobals = new Set<string>();
  const functions: FunctionInfo[] = [];
  let vmlinux = false;
  let kernelHeaders = false;
  let coreReadIncluded = false;
  // `-DBPF_NO_PRESERVE_ACCESS_INDEX` keeps vmlinux.h's types out of the CO-RE pragma, like a #define before it.
  let noPreserveAccessIndex = build.defines.has('BPF_NO_PRESERVE_ACCESS_INDEX');
  // The document store already masked this text; reuse its sites when given.
  const sites: readonly BpfMacroSite[] = knownSites ?? maskBpfMacros(text).sites;
  let bcc = !!build.bcc || sites.some(isBccSite);
  const externs = new Map<string, Extern>();
  // What each SEC() annotates, by the offset of the annotated name.
  const sections = new Map<number, SectionSite>();
  for (const site of sites) if (site.kind === 'section' && site.target) sections.set(site.target.start, site);
  let license: string | undefined;
  const headerPrints: string[] = [];
  // `-D` comes before the file: its own #define of a name wins.
  const macros = new Map<string, string>(build.defines);
  const macroSites = new Map<string, MacroSite>([...build.defines.keys()].map((k) => [k, { offset: -1, conditional: false }]));
  const rawFunctionMacros = new Map<string, RawFunctionMacro>();
  /** Offset of the include being read, while a header's macros are taken. */
  let includeAt = 0;
  /** Steps that define `offsetof`, with the offset they happen at (-1: before the file). */
  const offsetofAt: [number, OffsetofStep][] = [];
  const guardFunctions = new Map<string, GuardFunction>();

  const regions = coreRegions(text);
  const inRegion = (offset: number) => regions.some(([a, b]) => offset >= a && offset < b);

  const addStruct = (n: Node, typedefName?: string) => {
    const body = n.childForFieldName('body');
    const nameNode = n.childForFieldName('name');
    if (!body || (!nameNode && !typedefName)) return;
    const name = nameNode ? src(nameNode) : typedefName!;
    if (structs.has(name)) return;
    const fields = new Map<string, { type: CType; node: Node; bitfield: boolean }>();
    for (const fd of body.namedChildren) {
      if (!fd || fd.type !== 'field_declaration') continue;
      const base = fromSpecifier(fd.childForFieldName('type'), src, typedefs);
      const bitfield = fd.namedChildren.some((c) => c?.type === 'bitfield_clause');
      for (const d of fd.childrenForFieldName('declarator')) {
        if (!d) continue;
        const r = applyDeclarator(base, d, src);
        if (r.name) fields.set(r.name, { type: r.type, node: d, bitfield });
      }
    }
    // `preserve_access_index` may sit before the name or after the closing brace.
    const after = text.slice(n.endIndex, Math.min(text.length, n.endIndex + 200)).split(';')[0];
    const attr =
      /preserve_access_index/.test(src(n).slice(0, body.startIndex - n.startIndex)) ||
      /preserve_access_index/.test(after) ||
      /preserve_access_index/.test(src(n).slice(body.endIndex - n.startIndex));
    structs.set(name, {
      name,
      kind: n.type === 'union_specifier' ? 'union' : 'struct',
      core: attr || inRegion(n.startIndex),
      fields,
      node: n,
      uri,
    });
  };

  /** Takes one top-level node; returns the nodes it holds that are top level too (conditional groups). */
  const visitTop = (n: Node): readonly (Node | null)[] => {
    switch (n.type) {
      case 'preproc_include': {
        const p = n.childForFieldName('path');
        if (!p) break;
        const raw = src(p);
        const system = raw.startsWith('<');
        const path = raw.replace(/^[<"]|[>"]$/g, '');
        includes.push({ path, system, node: n });
        if (/(^|\/)vmlinux[^/]*\.h$/.test(path)) vmlinux = true;
        else if (system && KERNEL_HEADER.test(path)) kernelHeaders = true;
        if (/bpf_core_read\.h$/.test(path)) coreReadIncluded = true;
        if (system && BCC_HEADERS.test(path)) bcc = true;
        includeAt = n.startIndex;
        if (system && path === 'stddef.h') offsetofAt.push([includeAt, { kind: 'stddef' }]);
        if (/(^|\/)bpf_helpers\.h$/.test(path)) offsetofAt.push([includeAt, { kind: 'libbpf' }]);
        includeHeader(path, system);
        break;
      }
      case 'preproc_def': {
        const name = n.childForFieldName('name');
        if (name && src(name) === 'BPF_NO_PRESERVE_ACCESS_INDEX' && !vmlinux) noPreserveAccessIndex = true;
        break;
      }
      case 'struct_specifier':
      case 'union_specifier':
        addStruct(n);
        break;
      case 'type_definition': {
        const spec = n.childForFieldName('type');
        const isAgg = !!spec && (spec.type === 'struct_specifier' || spec.type === 'union_specifier');
        const anon = isAgg && !spec.childForFieldName('name') && !!spec.childForFieldName('body');
        if (isAgg && !anon) addStruct(spec);
        const base = fromSpecifier(spec, src, typedefs);
        for (const d of n.childrenForFieldName('declarator')) {
          if (!d) continue;
          const r = applyDeclarator(base, d, src);
          if (!r.name) continue;
          if (anon) {
            // An anonymous aggregate behind a typedef is known by the typedef's name.
            addStruct(spec, r.name);
            typedefs.set(r.name, {
              kind: spec.type === 'union_specifier' ? 'union' : 'struct',
              name: r.name,
              ptr: r.type.ptr,
              arr: r.type.arr,
            });
          } else {
            typedefs.set(r.name, r.type);
          }
        }
        break;
      }
      case 'declaration': {
        const spec = n.childForFieldName('type');
        if (spec && (spec.type === 'struct_specifier' || spec.type === 'union_specifier')) addStruct(spec);
        const base = fromSpecifier(spec, src, typedefs);
        const ext = externOf(n);
        for (const d of n.childrenForFieldName('declarator')) {
          if (!d) continue;
          const r = applyDeclarator(base, d, src);
          if (!r.name) continue;
          globals.set(r.name, { type: r.type, node: d });
          if (ext) externs.set(r.name, { name: r.name, ...ext, isFunction: isFunctionDeclarator(d), node: n });
          const sec = sections.get(declaratorName(d)?.startIndex ?? -1);
          if (sec?.section === 'license' && d.type === 'init_declarator')
            license = stringValue(d.childForFieldName('value'), text) ?? license;
        }
        break;
      }
      case 'function_definition': {
        const { info, guard } = functionInfo(n, src, typedefs, sections);
        functions.push(info);
        if (guard && !info.sec) guardFunctions.set(info.name, guard);
        break;
      }
      case 'preproc_ifdef':
      case 'preproc_if':
      case 'preproc_else':
      case 'preproc_elif':
      case 'preproc_elifdef':
      case 'linkage_specification':
      case 'declaration_list':
        return n.namedChildren;
      default:
        break;
    }
    return [];
  };
  /** Takes what a header contributes (its types, macros and CO-RE facts). */
  function includeHeader(path: string, system: boolean) {
    if (!resolve) return;
    const h = resolve(uri, path, system);
    // Angle includes nothing resolves (libbpf's, the kernel's, the C library's) change nothing.
    if (system && !h) return;
    headerPrints.push(`${system ? '<' : ''}${path}\u0001${h?.fingerprint ?? '-'}`);
    if (!h) return;
    vmlinux ||= h.vmlinux;
    kernelHeaders ||= h.kernelHeaders;
    coreReadIncluded ||= h.coreReadIncluded;
    noPreserveAccessIndex ||= h.noPreserveAccessIndex;
    for (const [k, v] of h.structs) if (!structs.has(k)) structs.set(k, v);
    for (const [k, v] of h.typedefs) if (!typedefs.has(k)) typedefs.set(k, v);
    for (const k of h.globals) headerGlobals.add(k);
    for (const [k, v] of h.macros) {
      macros.set(k, v);
      if (!macroSites.has(k) || h.conditionalMacros.has(k))
        macroSites.set(k, { offset: includeAt, conditional: h.conditionalMacros.has(k) });
    }
    for (const [k, v] of h.guardFunctions) guardFunctions.set(k, v);
    for (const st of h.offsetofSteps ?? []) offsetofAt.push([includeAt, st]);
    for (const [k, v] of h.functionMacros) rawFunctionMacros.set(k, v);
  }
  // `-include FILE` is read before the file's first line.
  for (const f of build.forced) {
    if (/(^|\/)vmlinux[^/]*\.h$/.test(f)) vmlinux = true;
    includeHeader(f, false);
  }
  // In document order, with a stack rather than recursion: conditionals nest without limit.
  const pending: Node[] = [];
  const pushAll = (ns: readonly (Node | null)[]) => {
    for (let i = ns.length - 1; i >= 0; i--) {
      const c = ns[i];
      if (c) pending.push(c);
    }
  };
  const topLevel = root.namedChildren.filter((c): c is Node => !!c);
  pushAll(topLevel);
  for (let n = pending.pop(); n; n = pending.pop()) pushAll(visitTop(n));
  const directives = lexC(text).directives;
  const conditional = conditionalDirectives(directives);
  for (const [i, d] of directives.entries()) {
    // `#define NAME replacement`: no parenthesis right after the name.
    const m = /^#[ \t]*define[ \t]+([A-Za-z_]\w*)(?![\w(])[ \t]*([\s\S]*)$/.exec(d.text);
    if (m) {
      macros.set(m[1], m[2].replace(/\\\r?\n/g, ' ').trim());
      const prev = macroSites.get(m[1]);
      // The first definition says when it starts to exist; any conditional one makes it uncertain.
      macroSites.set(m[1], {
        offset: prev && prev.offset < d.start ? prev.offset : d.start,
        conditional: (prev?.conditional ?? false) || conditional[i],
      });
      continue;
    }
    const u = /^#[ \t]*undef[ \t]+([A-Za-z_]\w*)/.exec(d.text);
    if (u) macroSites.set(u[1], { offset: macroSites.get(u[1])?.offset ?? d.start, conditional: true });
    if (u?.[1] === 'offsetof') offsetofAt.push([d.start, { kind: 'undef', conditional: conditional[i] }]);
    const o = /^#[ \t]*define[ \t]+offsetof\(([^)]*)\)([\s\S]*)$/.exec(d.text);
    if (o) offsetofAt.push([d.start, { kind: 'define', means: offsetofDefinition(o[2]), conditional: conditional[i] }]);
    const fm = parseFunctionMacro(d.text);
    if (fm) rawFunctionMacros.set(fm.name, fm);
  }
  // Includes and the file's own directives in source order (the sort is stable: a header's steps
  // keep theirs).
  const offsetofSteps = offsetofAt.sort((a, b) => a[0] - b[0]).map(([, st]) => st);
  return {
    uri,
    text,
    includes,
    vmlinux,
    kernelHeaders,
    noPreserveAccessIndex,
    coreReadIncluded,
    headers: headerPrints.join('\u0000'),
    bcc,
    structs,
    typedefs,
    globals,
    headerGlobals,
    functions,
    topLevel,
    ...(license !== undefined ? { license } : {}),
    externs,
    macros,
    macroSites,
    functionMacros: rawFunctionMacros.size ? classifyMacros(rawFunctionMacros) : new Map(),
    directives,
    offsetof: offsetofMeaning(offsetofSteps),
    offsetofSteps,
    guardFunctions,
    sites: () => sites,
    build,
  };

  /** `extern` with a `__ksym` or `__kconfig` attribute inside the declaration `n`. */
  function externOf(n: Node): Pick<Extern, 'kind' | 'weak' | 'attrEnd'> | undefined {
    if (!n.children.some((c) => c?.type === 'storage_class_specifier' && src(c) === 'extern')) return undefined;
    let kind: Extern['kind'] | undefined;
    let attrEnd = -1;
    let weak = false;
    for (const site of sitesWithin(sites, n.startIndex, n.endIndex)) {
      if (site.kind !== 'attribute') continue;
      if (site.name === '__ksym' || site.name === '__kconfig') {
        kind = site.name === '__ksym' ? 'ksym' : 'kconfig';
        attrEnd = site.end;
      } else if (
        site.name === '__weak' ||
        (site.name.startsWith('__attribute') && site.args.some((a) => /\bweak\b|\b__weak__\b/.test(a.text)))
      ) {
        weak = true;
      }
    }
    return kind ? { kind, weak, attrEnd } : undefined;
  }
}

/**
 * For each directive, whether it sits inside a conditional (`#if`, `#ifdef`, `#ifndef` … `#endif`)
 * other than the file's include guard (`#ifndef G` / `#define G` first, its `#endif` last).
 */
function conditionalDirectives(directives: readonly DirectiveToken[]): boolean[] {
  const kind = (d: DirectiveToken) => /^#[ \t]*(\w+)/.exec(d.text)?.[1] ?? '';
  const guard =
    directives.length >= 3 &&
    kind(directives[0]) === 'ifndef' &&
    /^#[ \t]*define[ \t]+(\w+)/.exec(directives[1].text)?.[1] === /^#[ \t]*ifndef[ \t]+(\w+)/.exec(directives[0].text)?.[1] &&
    kind(directives[directives.length - 1]) === 'endif';
  // A header with `#pragma once` has no guard to skip.
  let depth = guard ? -1 : 0;
  return directives.map((d) => {
    const k = kind(d);
    if (k === 'if' || k === 'ifdef' || k === 'ifndef') {
      depth++;
      return depth > 0;
    }
    if (k === 'endif') {
      depth--;
      return depth >= 0;
    }
    return depth > 0;
  });
}

/** System headers that only BCC programs include. */
const BCC_HEADERS = /^(uapi\/linux\/ptrace\.h|bcc\/proto\.h)$/;

/** Whether a site is a BCC construct (a BCC map, probe or map method call). */
export function isBccSite(site: BpfMacroSite): boolean {
  return site.kind === 'bcc-map' || site.kind === 'bcc-probe' || site.kind === 'bcc-map-method';
}

/** The sites that start within [start, end) (sites are in source order). */
function sitesWithin(sites: readonly BpfMacroSite[], start: number, end: number): BpfMacroSite[] {
  let lo = 0;
  let hi = sites.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sites[mid].start < start) lo = mid + 1;
    else hi = mid;
  }
  const out: BpfMacroSite[] = [];
  for (let i = lo; i < sites.length && sites[i].start < end; i++) out.push(sites[i]);
  return out;
}

/** The identifier a declarator declares. */
function declaratorName(d: Node): Node | null {
  let x: Node | null = d;
  for (let i = 0; x && i < 16; i++) {
    if (x.type === 'identifier' || x.type === 'field_identifier') return x;
    x = x.childForFieldName('declarator');
  }
  return null;
}

/** Whether a declarator declares a function (`f(void)`, `*f(int)`), not a variable or a function pointer. */
function isFunctionDeclarator(d: Node): boolean {
  let x: Node | null = d.type === 'init_declarator' ? d.childForFieldName('declarator') : d;
  while (x && x.type === 'pointer_declarator') x = x.childForFieldName('declarator');
  return x?.type === 'function_declarator' && x.childForFieldName('declarator')?.type === 'identifier';
}

/** The value of a string literal (or adjacent literals), decoded; undefined for anything else. */
function stringValue(n: Node | null, text: string): string | undefined {
  if (!n) return undefined;
  const parts = n.type === 'concatenated_string' ? n.namedChildren : [n];
  let out = '';
  for (const p of parts) {
    if (!p || p.type !== 'string_literal') return undefined;
    out += decodeStringBody(text.slice(p.startIndex + 1, p.endIndex - 1));
  }
  return out;
}

/** The header-level facts of a parsed local header. */
export function buildHeaderModel(uri: string, text: string, tree: Tree, resolve?: IncludeResolver): HeaderModel {
  const m = buildFileModel(uri, text, tree, resolve, undefined, NO_BUILD);
  const fingerprint = createHash('sha1').update(text).update('\u0000').update(m.headers).digest('base64');
  return {
    fingerprint,
    vmlinux: m.vmlinux,
    kernelHeaders: m.kernelHeaders,
    coreReadIncluded: m.coreReadIncluded,
    noPreserveAccessIndex: m.noPreserveAccessIndex,
    structs: m.structs,
    typedefs: m.typedefs,
    globals: new Set([...m.globals.keys(), ...m.headerGlobals]),
    macros: m.macros,
    conditionalMacros: new Set([...m.macroSites].filter(([, v]) => v.conditional).map(([k]) => k)),
    functionMacros: new Map(
      [...m.functionMacros].map(([k, v]) => [k, { name: v.name, params: [...v.params], variadic: v.variadic, body: v.body }]),
    ),
    guardFunctions: m.guardFunctions,
    offsetofSteps: m.offsetofSteps,
  };
}

/** Existence checks a guard function may return. */
const GUARD_CALLS = /^(bpf_core_type_exists|bpf_core_type_matches|bpf_core_enum_value_exists)$/;

/**
 * The existence check a function body returns, if that is all it does: `return C;`, or
 * `if (C) return true; return false;` (and the negations of both).
 */
function guardReturned(body: Node, src: (n: Node) => string): GuardFunction | undefined {
  const stmts = body.namedChildren.filter((c): c is Node => !!c && c.type !== 'comment');
  const constant = (s: Node | undefined): boolean | undefined => {
    const v =
      s?.type === 'return_statement'
        ? src(s)
            .replace(/^return\s*|\s*;$/g, '')
            .trim()
        : '';
    return /^(true|1)$/.test(v) ? true : /^(false|0)$/.test(v) ? false : undefined;
  };
  let e: Node | null;
  let negated = false;
  if (stmts.length === 1 && stmts[0].type === 'return_statement') e = stmts[0].namedChild(0);
  else if (stmts.length === 2 && stmts[0].type === 'if_statement' && !stmts[0].childForFieldName('alternative')) {
    const cons = stmts[0].childForFieldName('consequence');
    const inner =
      cons?.type === 'compound_statement' ? cons.namedChildren.filter((c): c is Node => !!c && c.type !== 'comment') : cons ? [cons] : [];
    const then = inner.length === 1 ? constant(inner[0]) : undefined;
    const otherwise = constant(stmts[1]);
    if (then === undefined || otherwise === undefined || then === otherwise) return undefined;
    e = stmts[0].childForFieldName('condition');
    negated = !then;
  } else return undefined;
  for (let i = 0; e && i < 8; i++) {
    if (e.type === 'parenthesized_expression') e = e.namedChild(0);
    else if (e.type === 'unary_expression' && e.child(0)?.type === '!') {
      negated = !negated;
      e = e.childForFieldName('argument');
    } else break;
  }
  const fn = e?.type === 'call_expression' ? e.childForFieldName('function') : null;
  if (!e || !fn || !GUARD_CALLS.test(src(fn))) return undefined;
  return { call: src(e), negated };
}

/** What a function definition's own text says about it (the same text says the same anywhere). */
interface FunctionHead {
  readonly name: string;
  readonly wrapper?: string;
  /** Where the program's name starts, from the definition's start (-1: it has none). */
  readonly nameAt: number;
  /** The existence check the body returns, if that is all it does. */
  readonly guard?: GuardFunction;
  readonly calls: readonly string[];
  /** The body's start and end, from the definition's start (null: no body). */
  readonly body: readonly [number, number] | null;
}

const headsCache = new OwnedCache<object, FunctionHead>(
  { name: 'file.functionHeads', owner: 'the process (text-keyed; starts over at 4,096 definitions)', key: "a function definition's text" },
  4096,
);

/**
 * A function definition's model. Its name, wrapper and guard come from its text (kept by that
 * text, so an edit reads again only the function it changed); its body and parameters are read
 * from the tree when first asked for (the parameters' types with the file's typedefs, which in C
 * come before their use).
 */
function functionInfo(
  n: Node,
  src: (n: Node) => string,
  typedefs: ReadonlyMap<string, CType>,
  sections: ReadonlyMap<number, SectionSite>,
): { info: FunctionInfo; guard?: GuardFunction } {
  const text = src(n);
  // Read from the definition's own copy: the entry outlives this version of the document, and
  // names sliced from the document would keep the whole of it alive.
  const head = headsCache.get(TEXT_KEYED, text, () => {
    const own = detached(text);
    return functionHead(n, (m) => own.slice(m.startIndex - n.startIndex, m.endIndex - n.startIndex));
  });
  // The masker links each SEC() to the name it annotates.
  const sec = head.nameAt < 0 ? undefined : sections.get(n.startIndex + head.nameAt);
  const info = new FunctionModel(head, n, sec?.section != null && sec.target?.kind === 'function' ? sec.section : undefined, src, typedefs);
  return head.guard ? { info, guard: head.guard } : { info };
}

/**
 * {@link FunctionInfo} as {@link functionInfo} makes it: one object of one shape per function
 * (made for every function on every edit), its body and parameters read when first asked for.
 */
class FunctionModel implements FunctionInfo {
  readonly name: string;
  readonly calls: readonly string[];
  readonly bodySpan: { readonly start: number; readonly end: number } | null;
  readonly wrapper: string | undefined;
  private bodyNode: Node | null | undefined;
  private paramList: FunctionInfo['params'] | undefined;

  constructor(
    head: FunctionHead,
    readonly node: Node,
    readonly sec: string | undefined,
    private readonly src: (n: Node) => string,
    private readonly typedefs: ReadonlyMap<string, CType>,
  ) {
    this.name = head.name;
    this.calls = head.calls;
    this.bodySpan = head.body ? { start: node.startIndex + head.body[0], end: node.startIndex + head.body[1] } : null;
    this.wrapper = head.wrapper;
  }

  get body(): Node | null {
    if (this.bodyNode === undefined) this.bodyNode = this.node.childForFieldName('body');
    return this.bodyNode;
  }

  get params(): FunctionInfo['params'] {
    this.paramList ??= functionParams(this.node, this.src, this.typedefs, this.wrapper ? 1 : 0);
    return this.paramList;
  }
}

/** The `function_declarator` of a definition and its parameter declarations. */
function declaratorOf(n: Node): { decl: Node | null; pdecls: Node[] } {
  let decl = n.childForFieldName('declarator');
  while (decl && decl.type !== 'function_declarator') decl = decl.childForFieldName('declarator');
  const list = decl?.childForFieldName('parameters');
  const pdecls = (list?.namedChildren ?? []).filter((p): p is Node => !!p && p.type === 'parameter_declaration');
  return { decl, pdecls };
}

function functionHead(n: Node, src: (n: Node) => string): FunctionHead {
  const { decl, pdecls } = declaratorOf(n);
  const nameNode = decl?.childForFieldName('declarator') ?? null;
  const name = nameNode ? src(nameNode) : '';
  const body = n.childForFieldName('body');
  const guard = body ? guardReturned(body, src) : undefined;
  const calls = body ? [...new Set(Array.from(src(body).matchAll(/\b([A-Za-z_]\w*)\s*\(/g), (m) => m[1]))] : [];
  const span = body ? ([body.startIndex - n.startIndex, body.endIndex - n.startIndex] as const) : null;
  const rest = { calls, body: span, ...(guard ? { guard } : {}) };
  if (PROGRAM_WRAPPERS.has(name) && pdecls.length > 0) {
    // `BPF_KPROBE(prog, struct file *f)`: tree-sitter reads `prog` as a parameter type.
    return { name: src(pdecls[0]).trim(), wrapper: name, nameAt: pdecls[0].startIndex - n.startIndex, ...rest };
  }
  return { name, nameAt: nameNode ? nameNode.startIndex - n.startIndex : -1, ...rest };
}

function functionParams(n: Node, src: (n: Node) => string, typedefs: ReadonlyMap<string, CType>, skip: number): FunctionInfo['params'] {
  const params: { name: string; type: CType; node: Node }[] = [];
  for (const p of declaratorOf(n).pdecls.slice(skip)) {
    const base = fromSpecifier(p.childForFieldName('type'), src, typedefs);
    const r = applyDeclarator(base, p.childForFieldName('declarator'), src);
    if (r.name) params.push({ name: r.name, type: r.type, node: p });
  }
  return params;
}

/** `#pragma clang attribute push(__attribute__((preserve_access_index)), …)` … `pop` offset ranges. */
export function coreRegions(text: string): [number, number][] {
  const out: [number, number][] = [];
  const re = /^[ \t]*#[ \t]*pragma[ \t]+clang[ \t]+attribute[ \t]+(push|pop)\b(.*)$/gm;
  const stack: { start: number; core: boolean }[] = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    if (m[1] === 'push') stack.push({ start: m.index, core: /preserve_access_index/.test(m[2]) });
    else {
      const s = stack.pop();
      if (s?.core) out.push([s.start, m.index]);
    }
  }
  for (const s of stack) if (s.core) out.push([s.start, text.length]);
  return out;
}
