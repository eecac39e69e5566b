/**
 * The per-file model: includes, CO-RE regions, struct definitions and where their layout comes
 * from, typedefs, globals, and the functions with their `SEC()` program context.
 */
import type { Node, Tree } from 'web-tree-sitter';
import { maskBpfMacros, type BpfMacroSite } from '../parse/bpfMacros';
import { PROGRAM_WRAPPERS } from '../parse/macroTables';
import { applyDeclarator, fromSpecifier, type CType } from './ctypes';

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
  /** A BCC program (compiled on the host against its headers; derefs rewritten to probe reads). */
  readonly bcc: boolean;
  readonly structs: Map<string, StructDef>;
  readonly typedefs: Map<string, CType>;
  readonly globals: Map<string, { type: CType; node: Node }>;
  readonly functions: FunctionInfo[];
  /** The program's license string (`char LICENSE[] SEC("license") = "GPL";`), if declared. */
  readonly license?: string;
  /** The BPF macro sites of the file (SEC, map members, BCC maps, kfunc externs, loops…), computed on first use. */
  sites(): readonly BpfMacroSite[];
}

/** What a local header contributes (parsed once and cached by the host). */
export interface HeaderModel {
  readonly vmlinux: boolean;
  readonly kernelHeaders: boolean;
  readonly coreReadIncluded: boolean;
  readonly noPreserveAccessIndex: boolean;
  readonly structs: Map<string, StructDef>;
  readonly typedefs: Map<string, CType>;
}

/** Resolves `#include "x.h"` of a file to that header's model, if it can be read. */
export type IncludeResolver = (fromUri: string, path: string) => HeaderModel | undefined;


const KERNEL_HEADER = /^(linux|asm|asm-generic|net|uapi|trace|generated)\//;
const BCC_MARKERS = /\b(BPF_HASH|BPF_ARRAY|BPF_PERCPU_ARRAY|BPF_PERF_OUTPUT|BPF_RINGBUF_OUTPUT|BPF_STACK_TRACE|BPF_HISTOGRAM|BPF_TABLE|TRACEPOINT_PROBE|RAW_TRACEPOINT_PROBE|KFUNC_PROBE|KRETFUNC_PROBE|LSM_PROBE)\s*\(/;

/** Builds the model of a parsed file. */
export function buildFileModel(uri: string, text: string, tree: Tree, resolve?: IncludeResolver, knownSites?: readonly BpfMacroSite[]): FileModel {
  const src = (n: Node) => text.slice(n.startIndex, n.endIndex);
  const root = tree.rootNode;
  const includes: Include[] = [];
  const structs = new Map<string, StructDef>();
  const typedefs = new Map<string, CType>();
  const globals = new Map<string, { type: CType; node: Node }>();
  const functions: FunctionInfo[] = [];
  let vmlinux = false;
  let kernelHeaders = false;
  let coreReadIncluded = false;
  let noPreserveAccessIndex = false;
  let bcc = BCC_MARKERS.test(text);

  const regions = coreRegions(text);
  const inRegion = (offset: number) => regions.some(([a, b]) => offset >= a && offset < b);
  const secs = secSites(text);

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
    const attr = /preserve_access_index/.test(src(n).slice(0, body.startIndex - n.startIndex)) || /preserve_access_index/.test(after) ||
      /preserve_access_index/.test(src(n).slice(body.endIndex - n.startIndex));
    structs.set(name, { name, kind: n.type === 'union_specifier' ? 'union' : 'struct', core: attr || inRegion(n.startIndex), fields, node: n, uri });
  };

  const visitTop = (n: Node) => {
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
        if (/^(uapi\/linux\/ptrace\.h|bcc\/proto\.h)$/.test(path) && system) bcc = true;
        if (!system && resolve) {
          const h = resolve(uri, path);
          if (h) {
            vmlinux ||= h.vmlinux;
            kernelHeaders ||= h.kernelHeaders;
            coreReadIncluded ||= h.coreReadIncluded;
            noPreserveAccessIndex ||= h.noPreserveAccessIndex;
            for (const [k, v] of h.structs) if (!structs.has(k)) structs.set(k, v);
            for (const [k, v] of h.typedefs) if (!typedefs.has(k)) typedefs.set(k, v);
          }
        }
        break;
      }
      case 'preproc_def': {
        const name = n.childForFieldName('name');
        if (name && src(name) === 'BPF_NO_PRESERVE_ACCESS_INDEX' && !vmlinux) noPreserveAccessIndex = true;
        break;
      }
      case 'struct_specifier': case 'union_specifier':
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
            typedefs.set(r.name, { kind: spec.type === 'union_specifier' ? 'union' : 'struct', name: r.name, ptr: r.type.ptr, arr: r.type.arr });
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
        for (const d of n.childrenForFieldName('declarator')) {
          if (!d) continue;
          const r = applyDeclarator(base, d, src);
          if (r.name) globals.set(r.name, { type: r.type, node: d });
        }
        break;
      }
      case 'function_definition':
        functions.push(functionInfo(n, src, typedefs, secs));
        break;
      case 'preproc_ifdef': case 'preproc_if': case 'preproc_else': case 'preproc_elif': case 'preproc_elifdef':
      case 'linkage_specification': case 'declaration_list':
        for (const c of n.namedChildren) if (c) visitTop(c);
        break;
      default:
        break;
    }
  };
  for (const c of root.namedChildren) if (c) visitTop(c);
  if (functions.some((f) => /^(kprobe|kretprobe|tracepoint|raw_tracepoint)__/.test(f.name) && !f.sec)) bcc = true;
  const license = /\bSEC\s*\(\s*"license"\s*\)\s*=\s*"([^"]*)"/.exec(text)?.[1];
  // The document store already masked this text; reuse its sites when given.
  let sites: readonly BpfMacroSite[] | undefined = knownSites;
  return {
    uri, text, includes, vmlinux, kernelHeaders, noPreserveAccessIndex, coreReadIncluded, bcc, structs, typedefs, globals, functions,
    ...(license !== undefined ? { license } : {}),
    sites: () => (sites ??= maskBpfMacros(text).sites),
  };
}

/** The header-level facts of a parsed local header. */
export function buildHeaderModel(uri: string, text: string, tree: Tree, resolve?: IncludeResolver): HeaderModel {
  const m = buildFileModel(uri, text, tree, resolve);
  return { vmlinux: m.vmlinux, kernelHeaders: m.kernelHeaders, coreReadIncluded: m.coreReadIncluded, noPreserveAccessIndex: m.noPreserveAccessIndex, structs: m.structs, typedefs: m.typedefs };
}

function functionInfo(n: Node, src: (n: Node) => string, typedefs: ReadonlyMap<string, CType>, secs: { end: number; name: string }[]): FunctionInfo {
  let decl = n.childForFieldName('declarator');
  while (decl && decl.type !== 'function_declarator') decl = decl.childForFieldName('declarator');
  const nameNode = decl?.childForFieldName('declarator') ?? null;
  let name = nameNode ? src(nameNode) : '';
  const params: FunctionInfo['params'] = [];
  let wrapper: string | undefined;
  const list = decl?.childForFieldName('parameters');
  const pdecls = (list?.namedChildren ?? []).filter((p): p is Node => !!p && p.type === 'parameter_declaration');
  let skip = 0;
  if (PROGRAM_WRAPPERS.has(name) && pdecls.length > 0) {
    // `BPF_KPROBE(prog, struct file *f)`: tree-sitter reads `prog` as a parameter type.
    wrapper = name;
    name = src(pdecls[0]).trim();
    skip = 1;
  }
  for (const p of pdecls.slice(skip)) {
    const base = fromSpecifier(p.childForFieldName('type'), src, typedefs);
    const r = applyDeclarator(base, p.childForFieldName('declarator'), src);
    if (r.name) params.push({ name: r.name, type: r.type, node: p });
  }
  // The SEC() annotation ends before the function's name and after any previous declaration.
  const headEnd = nameNode ? nameNode.startIndex : n.startIndex;
  const sec = secs.find((s) => s.end <= headEnd && s.end >= n.startIndex - 400 && !secs.some((o) => o !== s && o.end > s.end && o.end <= headEnd));
  const prevEnd = n.previousSibling?.endIndex ?? 0;
  return {
    name, node: n, body: n.childForFieldName('body'), params,
    ...(sec && sec.end > prevEnd ? { sec: sec.name } : {}),
    ...(wrapper ? { wrapper } : {}),
  };
}

/** `SEC("…")` uses in the text, outside comments and strings. */
export function secSites(text: string): { start: number; end: number; name: string }[] {
  const out: { start: number; end: number; name: string }[] = [];
  const code = blankCommentsAndStrings(text);
  const re = /\bSEC\s*\(\s*"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(code))) {
    const q = m.index + m[0].length;
    const close = text.indexOf('"', q);
    if (close < 0) break;
    const paren = text.indexOf(')', close);
    if (paren < 0) break;
    out.push({ start: m.index, end: paren + 1, name: text.slice(q, close) });
  }
  return out;
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

/** Replaces comments and string/char literal contents with spaces (same length, same lines). */
export function blankCommentsAndStrings(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'/g, (s) =>
    s.startsWith('"') || s.startsWith("'") ? s[0] + s.slice(1, -1).replace(/[^\n]/g, ' ') + s[s.length - 1] : s.replace(/[^\n]/g, ' '));
}
