/**
 * "Convert to libbpf CO-RE": a BCC program (a C file, or the C a Python tool hands to
 * `BPF(text=…)`) written out as a `.bpf.c` that clang compiles once and libbpf loads anywhere.
 *
 * The conversion is textual, on the parser's macro sites (`parse/bpfMacros.ts`): BCC's map macros
 * become BTF-defined maps, map methods the helpers they stand for, probe macros and `kprobe__`
 * functions `SEC()` programs through libbpf's wrappers, kernel headers `vmlinux.h`. Then the
 * linter itself runs on the result (loader libbpf) and its safe fixes turn the kernel pointer
 * reads BCC's rewriter made into probe reads into `BPF_CORE_READ` (`unsafe-kernel-deref`,
 * `non-core-field-read`, `legacy-probe-read`). What it cannot convert is listed, never guessed.
 *
 * BCC's defaults are from its `src/cc/export/helpers.h` (BPF_HASH: key and value `u64`, 10240
 * entries; BPF_ARRAY: value `u64`, 10240; BPF_HISTOGRAM: key `int`, 64 entries, value `u64`;
 * BPF_RINGBUF_OUTPUT: page_cnt pages; BPF_STACK_TRACE: 127 frames, PERF_MAX_STACK_DEPTH) and its
 * reference guide (programs load under the GPL licence by default).
 */
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { compareVersions } from '../../../kernel-db/src/version';
import { applyEdits, fixAllEdits } from '../analysis/fixall';
import type { Finding } from '../analysis/model';
import { maskBpfMacros } from '../parse/bpfMacros';
import type { BccMapMethodSite, BccMapSite, BccProbeSite } from '../parse/sites';
import { extractBccPython } from '../parse/python';
import { programKernels } from './bccPython';

/** The result of a conversion. */
export interface Conversion {
  /** The `.bpf.c` text. */
  readonly text: string;
  /** What was not converted (or converted with an assumption), one line each, for the user. */
  readonly notes: readonly string[];
}

/** Analyses C text as a libbpf program (the linter's findings with their fixes). */
export type AnalyzeC = (text: string) => readonly Finding[];

/** A BCC map macro: its BPF map type and which argument is what (BCC's defaults when absent). */
interface MapShape {
  readonly type: string;
  readonly key?: { readonly arg: number; readonly fallback: string };
  readonly value?: { readonly arg: number; readonly fallback: string };
  readonly size?: { readonly arg: number; readonly fallback: string };
}

const MAPS: Readonly<Record<string, MapShape>> = {
  BPF_HASH: {
    type: 'BPF_MAP_TYPE_HASH',
    key: { arg: 1, fallback: 'u64' },
    value: { arg: 2, fallback: 'u64' },
    size: { arg: 3, fallback: '10240' },
  },
  BPF_LRU_HASH: {
    type: 'BPF_MAP_TYPE_LRU_HASH',
    key: { arg: 1, fallback: 'u64' },
    value: { arg: 2, fallback: 'u64' },
    size: { arg: 3, fallback: '10240' },
  },
  BPF_PERCPU_HASH: {
    type: 'BPF_MAP_TYPE_PERCPU_HASH',
    key: { arg: 1, fallback: 'u64' },
    value: { arg: 2, fallback: 'u64' },
    size: { arg: 3, fallback: '10240' },
  },
  BPF_ARRAY: {
    type: 'BPF_MAP_TYPE_ARRAY',
    key: { arg: -1, fallback: 'u32' },
    value: { arg: 1, fallback: 'u64' },
    size: { arg: 2, fallback: '10240' },
  },
  BPF_PERCPU_ARRAY: {
    type: 'BPF_MAP_TYPE_PERCPU_ARRAY',
    key: { arg: -1, fallback: 'u32' },
    value: { arg: 1, fallback: 'u64' },
    size: { arg: 2, fallback: '10240' },
  },
  BPF_HISTOGRAM: {
    type: 'BPF_MAP_TYPE_HASH',
    key: { arg: 1, fallback: 'int' },
    value: { arg: -1, fallback: 'u64' },
    size: { arg: 2, fallback: '64' },
  },
  BPF_STACK_TRACE: {
    type: 'BPF_MAP_TYPE_STACK_TRACE',
    key: { arg: -1, fallback: 'u32' },
    value: { arg: -1, fallback: 'u64[127]' },
    size: { arg: 1, fallback: '1024' },
  },
  BPF_QUEUE: { type: 'BPF_MAP_TYPE_QUEUE', value: { arg: 1, fallback: 'u64' }, size: { arg: 2, fallback: '1024' } },
  BPF_STACK: { type: 'BPF_MAP_TYPE_STACK', value: { arg: 1, fallback: 'u64' }, size: { arg: 2, fallback: '1024' } },
  BPF_PROG_ARRAY: {
    type: 'BPF_MAP_TYPE_PROG_ARRAY',
    key: { arg: -1, fallback: 'u32' },
    value: { arg: -1, fallback: 'u32' },
    size: { arg: 1, fallback: '1' },
  },
};

/** Kernel-header macros BCC tools use that vmlinux.h (types only) does not define, with their source. */
const HEADER_MACROS: readonly [string, string, string][] = [
  ['TASK_COMM_LEN', '16', 'include/linux/sched.h'],
  ['NAME_MAX', '255', 'include/uapi/linux/limits.h'],
  ['AF_INET', '2', 'include/linux/socket.h'],
  ['AF_INET6', '10', 'include/linux/socket.h'],
  ['TASK_RUNNING', '0', 'include/linux/sched.h'],
  ['__user', '', 'include/linux/compiler_types.h (an address-space annotation for sparse)'],
];

/** BCC's own helper functions (helpers.h) a converted program still calls, written for libbpf. */
const BCC_FUNCTIONS: readonly [string, string, string][] = [
  [
    'bpf_log2l',
    `/* BCC's bpf_log2l(): floor(log2(v)) + 1, and 1 for 0 (the slot its log2 histograms print) */
static __always_inline unsigned int bpf_log2l(unsigned long v)
{
    unsigned int n = 1;
#pragma unroll
    for (int shift = 32; shift > 0; shift /= 2) {
        if (v >> shift) {
            v >>= shift;
            n += shift;
        }
    }
    return n;
}`,
    'bpf_log2l(): defined in the file as BCC defines it (floor(log2(v)) + 1)',
  ],
  [
    'bpf_log2',
    `/* BCC's bpf_log2(): floor(log2(v)), and 0 for 0 */
static __always_inline unsigned int bpf_log2(unsigned int v)
{
    unsigned int n = 0;
#pragma unroll
    for (int shift = 16; shift > 0; shift /= 2) {
        if (v >> shift) {
            v >>= shift;
            n += shift;
        }
    }
    return n;
}`,
    'bpf_log2(): defined in the file as BCC defines it (floor(log2(v)))',
  ],
  ['lock_xadd', '#define lock_xadd(ptr, val) ((void)__sync_fetch_and_add(ptr, val))', 'lock_xadd(): __sync_fetch_and_add'],
];

/** A probe prefix a Python tool attaches by hand, to the section libbpf gives it. */
const ATTACH_CALLS: Readonly<Record<string, string>> = {
  attach_kprobe: 'kprobe',
  attach_kretprobe: 'kretprobe',
  attach_tracepoint: 'tracepoint',
  attach_raw_tracepoint: 'raw_tp',
};

/** Where the Python attaches a function by hand: `b.attach_kprobe(event="vfs_read", fn_name="trace_read")`. */
function pythonAttachments(py: string): { attached: Map<string, { kind: string; target: string }[]>; unknown: Set<string> } {
  const attached = new Map<string, { kind: string; target: string }[]>();
  const unknown = new Set<string>();
  for (const m of py.matchAll(
    /\.(attach_kprobe|attach_kretprobe|attach_tracepoint|attach_raw_tracepoint)\s*\(([^()]*(?:\([^()]*\)[^()]*)*)\)/g,
  )) {
    const args = m[2];
    const fn = /fn_name\s*=\s*b?["']([A-Za-z_]\w*)["']/.exec(args)?.[1];
    if (!fn) continue;
    const target = /(?:event|tp)\s*=\s*b?["']([\w:./-]+)["']/.exec(args)?.[1];
    if (!target) {
      unknown.add(fn);
      continue;
    }
    const list = attached.get(fn) ?? [];
    list.push({ kind: ATTACH_CALLS[m[1]], target: target.replace(':', '/') });
    attached.set(fn, list);
  }
  return { attached, unknown };
}

/** The C of a BCC program in a file: the file itself, or the first program a Python tool builds. */
function programText(path: string, text: string, db: KernelDb, notes: string[]): { c: string; py?: string } | undefined {
  if (!/\.py$/i.test(path)) return { c: text };
  const bcc = extractBccPython(text);
  if (!bcc.importsBcc) {
    notes.push('the file does not import bcc: no BCC program to convert');
    return undefined;
  }
  if (bcc.programs.length === 0) {
    notes.push(
      bcc.srcFiles.length
        ? `the program is in ${bcc.srcFiles.join(', ')} (BPF(src_file=…)): convert that file`
        : 'no BPF(text=…) program the Python spells: nothing to convert',
    );
    return undefined;
  }
  // The variant the newest kernel of the database gets (its probes answered there), else the first.
  const builtIn = db.kernels.filter((k) => !k.user);
  const newest = builtIn.reduce<Kernel | undefined>((a, k) => (!a || compareVersions(k.version, a.version) > 0 ? k : a), undefined);
  const p = bcc.programs.find((x) => newest && programKernels(db, [newest], x).length > 0) ?? bcc.programs[0];
  if (bcc.programs.length > 1)
    notes.push(
      `the Python builds ${bcc.programs.length} variants of the program (run-time probes); converted the one ${newest ? `${newest.name} gets` : 'built first'}, built where ${
        p.when[0]?.map((a) => `${a.source} is ${a.value}`).join(' and ') || 'no probe decides'
      }: use CO-RE checks (bpf_core_field_exists, bpf_core_type_exists) for the others`,
    );
  let c = p.text;
  // Text the Python fills in (placeholders, %d, {} fields) stays marked in the segments.
  const gaps = p.segments.filter((s) => s.synthetic && s.end > s.start);
  if (gaps.some((s) => /^\d+$/.test(p.text.slice(s.start, s.end))))
    notes.push('values the Python formats in (%d, {} fields) were written as 0: make them const volatile globals the loader sets');
  c = placeholders(c, gaps, notes);
  return { c, py: text };
}

/** Placeholders the Python replaces on paths not followed: statements dropped, values made `const volatile`. */
function placeholders(c: string, gaps: readonly { start: number; end: number }[], notes: string[]): string {
  const words = new Set<string>();
  for (const g of gaps) {
    const w = c.slice(g.start, g.end);
    if (/^[A-Z_][A-Z0-9_]{2,}$/.test(w)) words.add(w);
  }
  let out = c;
  const globals: string[] = [];
  for (const w of words) {
    const alone = new RegExp(`^([ \\t]*)${w}[ \\t]*;?[ \\t]*$`, 'gm');
    if (alone.test(out)) {
      out = out.replace(alone, '$1/* removed: the Python replaces this placeholder */');
      notes.push(
        `placeholder ${w} (code the Python inserts on an option): removed; add the code it stands for under a const volatile flag`,
      );
    } else if (new RegExp(`\\b${w}\\b`).test(out)) {
      globals.push(`const volatile long ${w} = 0; /* the Python replaced ${w}; set it in the skeleton's rodata before loading */`);
      notes.push(`placeholder ${w}: a const volatile global (0); set it from user space before loading`);
    }
  }
  return globals.length ? `${globals.join('\n')}\n${out}` : out;
}

const HEADER = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
`;

/** Converts a BCC program; `analyze` is the linter on C text (its safe CO-RE fixes are applied). */
export function convertBcc(path: string, input: string, db: KernelDb, analyze: AnalyzeC): Conversion {
  const notes: string[] = [];
  const prog = programText(path, input, db, notes);
  if (!prog) return { text: '', notes };
  const c = prog.c;
  const { sites } = maskBpfMacros(c);
  const edits: { start: number; end: number; text: string }[] = [];
  const prelude: string[] = [];
  const maps = new Map<string, MapInfo>();

  // Kernel and BCC headers: vmlinux.h has the types.
  for (const m of c.matchAll(/^[ \t]*#[ \t]*include[ \t]*<(?:linux|uapi|net|bcc|asm|asm-generic|trace)\/[^>]*>[^\n]*$/gm))
    edits.push({ start: m.index, end: m.index + m[0].length, text: `/* ${m[0].trim()}: vmlinux.h */` });

  for (const s of sites) {
    if (s.kind === 'bcc-map') convertMap(c, s, edits, maps, notes);
  }
  const helpers = new Set<string>();
  for (const s of sites) {
    if (s.kind === 'bcc-map-method') convertMethod(s, maps, edits, helpers, notes);
  }
  // A map's helper functions follow its declaration (they name the map).
  for (const m of maps.values()) if (m.edit && m.helpers.length) m.edit.text += `\n\n${m.helpers.join('\n\n')}`;
  const attach = prog.py ? pythonAttachments(prog.py) : undefined;
  const programs = new Set<string>();
  for (const s of sites) {
    if (s.kind === 'bcc-probe') {
      convertProbe(c, s, db, edits, notes);
      programs.add(s.programName);
    }
  }
  if (attach) convertAttached(c, attach, programs, edits, notes);

  let body = applySpans(c, edits);
  for (const [name, def, note] of BCC_FUNCTIONS)
    if (new RegExp(`\\b${name}\\s*\\(`).test(body)) {
      prelude.unshift(def);
      notes.push(note);
    }
  const used = HEADER_MACROS.filter(
    ([name]) => new RegExp(`\\b${name}\\b`).test(body) && !new RegExp(`#\\s*define\\s+${name}\\b`).test(body),
  );
  const defines = used.map(([name, value, source]) => `#ifndef ${name}\n#define ${name} ${value} /* ${source} */\n#endif`);
  if (!/SEC\s*\(\s*"license"\s*\)/.test(body)) {
    body += '\nchar LICENSE[] SEC("license") = "GPL"; /* BCC loads programs under the GPL by default */\n';
  }
  let text = `${HEADER}${defines.length ? `${defines.join('\n')}\n` : ''}${prelude.length ? `\n${prelude.join('\n')}\n` : ''}\n${body}`;

  // The linter's own CO-RE fixes: kernel pointer reads BCC rewrote become BPF_CORE_READ.
  for (let round = 0; round < 3; round++) {
    const fixable = analyze(text).filter((f) => FIX_RULES.has(f.rule));
    const fixEdits = fixAllEdits(fixable);
    if (fixEdits.length === 0) break;
    text = applyEdits(text, fixEdits);
  }
  const after = analyze(text);
  for (const f of after) {
    const head = `line ${f.range.start.line + 1}: ${f.message.split('\n')[0]}`;
    if (f.rule === 'unsafe-kernel-deref' || f.rule === 'non-core-field-read')
      notes.push(`${head} (no safe rewrite; read it with BPF_CORE_READ by hand)`);
    // A member or type some kernels lack: the CO-RE program must check for it (bpf_core_field_exists).
    else if ((f.rule === 'field-missing-in-range' || f.rule === 'type-missing-in-range') && f.severity === 'error') notes.push(head);
  }
  return { text, notes };
}

/** Rules whose safe fixes are the CO-RE rewrites of a conversion. */
const FIX_RULES = new Set(['unsafe-kernel-deref', 'non-core-field-read', 'legacy-probe-read']);

function applySpans(text: string, edits: readonly { start: number; end: number; text: string }[]): string {
  const sorted = [...edits].sort((a, b) => b.start - a.start || b.end - a.end);
  let out = text;
  let limit = Number.POSITIVE_INFINITY;
  for (const e of sorted) {
    if (e.end > limit) continue; // overlapping edits: the outer one was applied
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
    limit = e.start;
  }
  return out;
}

/** A converted map: its key and value types, its declaration's edit and the helpers its methods need. */
interface MapInfo {
  readonly key: string;
  readonly value: string;
  readonly edit?: { start: number; end: number; text: string };
  readonly helpers: string[];
}

function convertMap(
  c: string,
  s: BccMapSite,
  edits: { start: number; end: number; text: string }[],
  maps: Map<string, MapInfo>,
  notes: string[],
): void {
  const shape = MAPS[s.name];
  const semi = /^\s*;/.exec(c.slice(s.end));
  const end = semi ? s.end + semi[0].length : s.end;
  if (s.name === 'BPF_PERF_OUTPUT') {
    const edit = {
      start: s.start,
      end,
      text: `struct {\n    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);\n    __uint(key_size, sizeof(u32));\n    __uint(value_size, sizeof(u32));\n} ${s.mapName} SEC(".maps");`,
    };
    edits.push(edit);
    maps.set(s.mapName, { key: 'u32', value: 'u32', edit, helpers: [] });
    return;
  }
  if (s.name === 'BPF_RINGBUF_OUTPUT') {
    const pages = s.args[1]?.text || '8';
    const edit = {
      start: s.start,
      end,
      text: `struct {\n    __uint(type, BPF_MAP_TYPE_RINGBUF);\n    __uint(max_entries, (${pages}) * 4096);\n} ${s.mapName} SEC(".maps");`,
    };
    edits.push(edit);
    maps.set(s.mapName, { key: '', value: '', edit, helpers: [] });
    notes.push(
      `${s.mapName}: BCC sizes ring buffers in pages; max_entries assumes 4096-byte pages (a power of two, a multiple of the page size)`,
    );
    return;
  }
  if (!shape) {
    notes.push(`${s.name}(${s.mapName}): not converted (declare it as a BTF map by hand)`);
    return;
  }
  const arg = (spec: { arg: number; fallback: string } | undefined) =>
    spec ? (spec.arg >= 0 && s.args[spec.arg]?.text ? s.args[spec.arg].text : spec.fallback) : undefined;
  const key = arg(shape.key);
  const value = arg(shape.value);
  const size = arg(shape.size);
  // BCC makes a histogram with an int key an array (the bcc_conventions facts).
  const type = s.name === 'BPF_HISTOGRAM' && key === 'int' ? 'BPF_MAP_TYPE_ARRAY' : shape.type;
  const typeLine = (name: string, t: string) => {
    const arr = /^(.*)\[(\w+)\]$/.exec(t);
    return arr ? `    __uint(${name}_size, sizeof(${arr[1]}) * ${arr[2]});` : `    __type(${name}, ${t});`;
  };
  const lines = [`    __uint(type, ${type});`, `    __uint(max_entries, ${size});`];
  if (key) lines.push(typeLine('key', key));
  if (value) lines.push(typeLine('value', value));
  const edit = { start: s.start, end, text: `struct {\n${lines.join('\n')}\n} ${s.mapName} SEC(".maps");` };
  edits.push(edit);
  maps.set(s.mapName, { key: key ?? '', value: value ?? '', edit, helpers: [] });
}

function convertMethod(
  s: BccMapMethodSite,
  maps: Map<string, MapInfo>,
  edits: { start: number; end: number; text: string }[],
  helpers: Set<string>,
  notes: string[],
): void {
  const m = s.mapName;
  const a = s.args.map((x) => x.text);
  const map = maps.get(m);
  let text: string | undefined;
  switch (s.method) {
    case 'lookup':
      text = `bpf_map_lookup_elem(&${m}, ${a[0]})`;
      break;
    case 'update':
      text = `bpf_map_update_elem(&${m}, ${a[0]}, ${a[1]}, BPF_ANY)`;
      break;
    case 'insert':
      text = `bpf_map_update_elem(&${m}, ${a[0]}, ${a[1]}, BPF_NOEXIST)`;
      break;
    case 'delete':
      text = `bpf_map_delete_elem(&${m}, ${a[0]})`;
      break;
    case 'perf_submit':
      text = `bpf_perf_event_output(${a[0]}, &${m}, BPF_F_CURRENT_CPU, ${a[1]}, ${a[2]})`;
      break;
    case 'ringbuf_output':
      text = `bpf_ringbuf_output(&${m}, ${a[0]}, ${a[1]}, ${a[2] ?? '0'})`;
      break;
    case 'ringbuf_reserve':
      text = `bpf_ringbuf_reserve(&${m}, ${a[0]}, 0)`;
      break;
    case 'ringbuf_submit':
      text = `bpf_ringbuf_submit(${a[0]}, ${a[1] ?? '0'})`;
      break;
    case 'ringbuf_discard':
      text = `bpf_ringbuf_discard(${a[0]}, ${a[1] ?? '0'})`;
      break;
    case 'get_stackid':
      text = `bpf_get_stackid(${a[0]}, &${m}, ${a[1] ?? '0'})`;
      break;
    case 'push':
      text = `bpf_map_push_elem(&${m}, ${a[0]}, ${a[1] ?? '0'})`;
      break;
    case 'pop':
      text = `bpf_map_pop_elem(&${m}, ${a[0]})`;
      break;
    case 'peek':
      text = `bpf_map_peek_elem(&${m}, ${a[0]})`;
      break;
    case 'call':
      text = `bpf_tail_call(${a[0]}, &${m}, ${a[1]})`;
      break;
    case 'lookup_or_init':
    case 'lookup_or_try_init': {
      const fn = `${m}__lookup_or_try_init`;
      if (!helpers.has(fn) && map) {
        helpers.add(fn);
        map.helpers.push(
          `/* ${m}.${s.method}() */\nstatic __always_inline void *${fn}(const void *key, const void *init)\n{\n    void *v = bpf_map_lookup_elem(&${m}, key);\n    if (v)\n        return v;\n    bpf_map_update_elem(&${m}, key, init, BPF_NOEXIST);\n    return bpf_map_lookup_elem(&${m}, key);\n}`,
        );
      }
      if (!map) break;
      text = `${fn}(${a[0]}, ${a[1]})`;
      break;
    }
    case 'increment':
    case 'atomic_increment': {
      if (!map?.key || !map.value) break;
      const fn = `${m}__increment`;
      if (!helpers.has(fn)) {
        helpers.add(fn);
        map.helpers.push(
          `/* ${m}.increment() */\nstatic __always_inline void ${fn}(${map.key} key, ${map.value} n)\n{\n    ${map.value} *v = bpf_map_lookup_elem(&${m}, &key);\n    if (v) {\n        __sync_fetch_and_add(v, n);\n        return;\n    }\n    bpf_map_update_elem(&${m}, &key, &n, BPF_NOEXIST);\n}`,
        );
      }
      text = `${fn}(${a[0]}, ${a[1] ?? '1'})`;
      break;
    }
  }
  if (text === undefined) {
    notes.push(`${m}.${s.method}(): not converted (no libbpf helper stands for it here)`);
    return;
  }
  // The helper functions are declared before the code that calls them, after the maps.
  edits.push({ start: s.start, end: s.end, text });
}

/** The tracepoint record struct vmlinux.h has for an event: `trace_event_raw_<class>`. */
function recordStruct(db: KernelDb, category: string, event: string): string {
  const cls = db
    .tracepoint(`${category}/${event}`, db.kernels)
    .map((a) => a.class)
    .find((x): x is string => !!x);
  return `trace_event_raw_${cls ?? event}`;
}

function convertProbe(
  c: string,
  s: BccProbeSite,
  db: KernelDb,
  edits: { start: number; end: number; text: string }[],
  notes: string[],
): void {
  const params = s.params.map((p) => p.text).filter((p) => p.trim() !== '');
  const lineStart = c.lastIndexOf('\n', s.start - 1) + 1;
  const sec = (name: string) => edits.push({ start: lineStart, end: lineStart, text: `SEC("${name}")\n` });
  const [t, target] = [s.probe.type, s.probe.target];
  switch (s.name) {
    case 'TRACEPOINT_PROBE': {
      const [category, event] = target.split(':');
      if (category === 'syscalls') {
        notes.push(
          `TRACEPOINT_PROBE(${category}, ${event}): vmlinux.h has no per-syscall record; the arguments are args->args[i] of struct trace_event_raw_sys_enter (or use SEC("ksyscall/…"))`,
        );
      }
      sec(`tracepoint/${category}/${event}`);
      const struct =
        category === 'syscalls'
          ? event.startsWith('sys_exit')
            ? 'trace_event_raw_sys_exit'
            : 'trace_event_raw_sys_enter'
          : recordStruct(db, category, event);
      edits.push({ start: s.start, end: s.end, text: `int ${s.programName}(struct ${struct} *args)` });
      return;
    }
    case 'RAW_TRACEPOINT_PROBE':
      sec(`raw_tp/${target}`);
      edits.push({ start: s.start, end: s.end, text: `int ${s.programName}(struct bpf_raw_tracepoint_args *ctx)` });
      return;
    case 'KFUNC_PROBE':
    case 'KRETFUNC_PROBE':
    case 'LSM_PROBE':
    case 'KMOD_RET': {
      const section = { KFUNC_PROBE: 'fentry', KRETFUNC_PROBE: 'fexit', LSM_PROBE: 'lsm', KMOD_RET: 'fmod_ret' }[s.name];
      sec(`${section}/${target}`);
      edits.push({ start: s.start, end: s.end, text: `int BPF_PROG(${[s.programName, ...params].join(', ')})` });
      return;
    }
  }
  if (s.masked) {
    notes.push(`${s.name}: not converted`);
    return;
  }
  // A function BCC attaches by its name: kprobe__vfs_read(struct pt_regs *ctx, …).
  const rest = s.params.slice(1).map((p) => p.text);
  const first = s.params[0];
  if (t === 'kprobe' || t === 'kretprobe') {
    if (first && !/\bpt_regs\b/.test(first.text)) {
      notes.push(`${s.programName}: the first parameter is not struct pt_regs *ctx; not converted`);
      return;
    }
    sec(`${t}/${target}`);
    const wrapper = t === 'kprobe' ? 'BPF_KPROBE' : 'BPF_KRETPROBE';
    edits.push({ start: s.start, end: s.end, text: `${wrapper}(${[s.programName, ...(t === 'kprobe' ? rest : [])].join(', ')})` });
    if (t === 'kretprobe' && rest.length) notes.push(`${s.programName}: a kretprobe sees no arguments; its parameters were dropped`);
    return;
  }
  if (t === 'tracepoint') {
    const [category, event] = target.split(':');
    sec(`tracepoint/${category}/${event}`);
    return;
  }
  notes.push(`${s.programName} (${t}): not converted`);
}

/** Functions a Python tool attaches by hand: `SEC()` from its attach call, libbpf's wrapper for kprobes. */
function convertAttached(
  c: string,
  attach: { attached: Map<string, { kind: string; target: string }[]>; unknown: Set<string> },
  programs: Set<string>,
  edits: { start: number; end: number; text: string }[],
  notes: string[],
): void {
  for (const fn of attach.unknown) notes.push(`${fn}: the Python attaches it to a target it computes; give it a SEC() by hand`);
  for (const [fn, list] of attach.attached) {
    if (programs.has(fn) || attach.unknown.has(fn)) continue;
    const decl = new RegExp(`^([ \\t]*)(?:static[ \\t]+)?int[ \\t]+${fn}[ \\t]*\\(([^)]*)\\)`, 'm').exec(c);
    if (!decl) continue;
    if (list.length > 1)
      notes.push(
        `${fn}: the Python attaches it to ${list.map((x) => x.target).join(', ')}; libbpf needs one program per target (copy it), converted for ${list[0].target}`,
      );
    const { kind, target } = list[0];
    const params = decl[2].split(',').map((p) => p.trim());
    const start = decl.index + decl[1].length;
    const end = decl.index + decl[0].length;
    if (kind === 'kprobe' || kind === 'kretprobe') {
      if (!/\bpt_regs\b/.test(params[0] ?? '')) {
        notes.push(`${fn}: the first parameter is not struct pt_regs *ctx; not converted`);
        continue;
      }
      const rest = kind === 'kprobe' ? params.slice(1).filter((p) => p) : [];
      edits.push({
        start,
        end,
        text: `SEC("${kind}/${target}")\nint ${kind === 'kprobe' ? 'BPF_KPROBE' : 'BPF_KRETPROBE'}(${[fn, ...rest].join(', ')})`,
      });
    } else {
      edits.push({ start, end: start, text: `SEC("${kind}/${target}")\n` });
    }
    programs.add(fn);
  }
}
