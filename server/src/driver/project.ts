/**
 * The project model: how a file's own build sees it. For a source file it finds, walking up from
 * the file's directory, the nearest `.ebpf-portability.json` (the project's settings, include
 * paths and defines: one file that CI and the editor both read), and the nearest
 * `compile_commands.json` (also in a `build/` directory beside it) or `compile_flags.txt` (the
 * compiler flags). From the flags it keeps what changes how the program reads: include
 * directories (`-I`, `-iquote`, `-isystem`, `-idirafter`), macros (`-D`, `-U`), forced includes
 * (`-include`) and the target architecture (`-D__TARGET_ARCH_<arch>`, `-target`). A file with no
 * project files has the empty project and is analysed as before.
 *
 * Files are read once and kept while their mtime and size are the same (a stat per lookup).
 */
import type { Stats } from 'node:fs';
import { FsMeta } from './fsMeta';
import { readBounded } from './files';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { quoted } from '../../../kernel-db/src/strings';

/** The configuration file's name. */
export const CONFIG_FILE = '.ebpf-portability.json';

/** What the compiler flags say about a file. */
export interface CompileFlags {
  /** `-iquote`: searched for `#include "…"` only, after the including file's directory. */
  readonly quote: readonly string[];
  /** `-I`, then `-isystem`, then `-idirafter`: searched for both include forms, in this order. */
  readonly include: readonly string[];
  /** `-D NAME[=VALUE]` (value `1` when none); `-U` removes. */
  readonly defines: ReadonlyMap<string, string>;
  /** Names `-U` removes (known not to be defined by the flags). */
  readonly undefines: readonly string[];
  /** `-include FILE`: read as if included first. */
  readonly forced: readonly string[];
  /** The architecture the object is built for (database names: x86_64, arm64, …). */
  readonly arch?: string;
}

/** The project a file belongs to. */
export interface Project {
  /** Changes whenever anything below changes (caches key on it). */
  readonly key: string;
  /** The `.ebpf-portability.json` applied, if any. */
  readonly configFile?: string;
  /** The `compile_commands.json` or `compile_flags.txt` applied, if any. */
  readonly flagsFile?: string;
  /** Settings from the configuration file (raw; validated with the user's). */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly flags: CompileFlags;
  /** Problems with the project files, in words the user can act on. */
  readonly problems: readonly string[];
  /**
   * The compiler's own arguments for the file (without the compiler), and the directory they are
   * relative to, when a compilation database or compile_flags.txt gives them; then the
   * configuration file's and the caller's flags, made absolute.
   */
  readonly command?: { readonly args: readonly string[]; readonly dir: string };
}

/** The project of a file without project files. */
export const NO_PROJECT: Project = {
  key: '',
  settings: {},
  flags: { quote: [], include: [], defines: new Map(), undefines: [], forced: [] },
  problems: [],
};

/** Options of the project search (the CLI's and the server's own flags). */
export interface ProjectOptions {
  /** A `compile_commands.json` to use instead of searching (`--compile-commands`). */
  readonly compileCommands?: string;
  /** A configuration file to use instead of searching (`--config`); false: none. */
  readonly config?: string | false;
  /** Flags added after the project's (`-I`, `-D` given to the CLI). */
  readonly extraFlags?: readonly string[];
}

/** `__TARGET_ARCH_<x>` (libbpf's convention) → the database's architecture names. */
const TARGET_ARCH: Readonly<Record<string, string>> = {
  x86: 'x86_64',
  arm64: 'arm64',
  arm: 'arm',
  s390: 's390x',
  powerpc: 'ppc64le',
  riscv: 'riscv64',
  loongarch: 'loongarch64',
  mips: 'mips',
  sparc: 'sparc',
};

/** Settings keys a configuration file may hold besides the compiler's. */
const SETTING_KEYS = new Set(['targetKernels', 'architectures', 'distros', 'loader', 'rules', 'compile']);
const FLAG_KEYS = new Set(['includePaths', 'defines', 'compileCommands', 'flags']);

const MAX_PROJECT_FILE_BYTES = 64 * 1024 * 1024;
const MAX_DEPTH = 64;

/** Finds and reads project files, keeping each while it is unchanged. */
export class ProjectFiles {
  private readonly files = new Map<string, { mtimeMs: number; size: number; value: unknown; problem?: string }>();

  constructor(
    private readonly options: ProjectOptions = {},
    /** Where stat answers come from (the engine's, which the language server keeps for a moment). */
    private readonly fs: FsMeta = new FsMeta(),
  ) {}

  /** The project of the file at `path` (absolute). */
  forFile(path: string): Project {
    const problems: string[] = [];
    let configFile: string | undefined;
    let compileCommands: string | undefined;
    let flagsText: string | undefined;
    const stamps: string[] = [];
    // Most of these paths do not exist: `throwIfNoEntry` spares an exception for each (~6 µs).
    const stat = (p: string): Stats | undefined => {
      try {
        const st = this.fs.stat(p);
        return st?.isFile() ? st : undefined;
      } catch {
        return undefined;
      }
    };
    if (this.options.config) configFile = resolve(this.options.config);
    if (this.options.compileCommands) compileCommands = resolve(this.options.compileCommands);
    let dir = dirname(path);
    for (let i = 0; i < MAX_DEPTH; i++) {
      if (configFile === undefined && this.options.config !== false && stat(join(dir, CONFIG_FILE))) configFile = join(dir, CONFIG_FILE);
      if (compileCommands === undefined && flagsText === undefined) {
        for (const c of [join(dir, 'compile_commands.json'), join(dir, 'build', 'compile_commands.json')])
          if (compileCommands === undefined && stat(c)) compileCommands = c;
        if (compileCommands === undefined && stat(join(dir, 'compile_flags.txt'))) flagsText = join(dir, 'compile_flags.txt');
      }
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }

    // The configuration file: settings, include paths, defines, and possibly where the flags are.
    const settings: Record<string, unknown> = {};
    const configFlags: string[] = [];
    if (configFile) {
      const raw = this.read(configFile, 'json', stamps);
      if (raw.problem) problems.push(raw.problem);
      else if (typeof raw.value !== 'object' || raw.value === null || Array.isArray(raw.value))
        problems.push(`${configFile}: must hold a JSON object`);
      else {
        const base = dirname(configFile);
        for (const [k, v] of Object.entries(raw.value as Record<string, unknown>)) {
          if (SETTING_KEYS.has(k)) settings[k] = v;
          else if (!FLAG_KEYS.has(k) && k !== '$schema')
            problems.push(`${configFile}: unknown key ${quoted(k)} (known: ${[...SETTING_KEYS, ...FLAG_KEYS].join(', ')})`);
        }
        const o = raw.value as Record<string, unknown>;
        const strings = (key: string): string[] => {
          const v = o[key];
          if (v === undefined) return [];
          if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
          problems.push(`${configFile}: "${key}" must be a list of strings; ignoring it`);
          return [];
        };
        for (const p of strings('includePaths')) configFlags.push(`-I${isAbsolute(p) ? p : join(base, p)}`);
        if (o.defines !== undefined) {
          if (Array.isArray(o.defines) && o.defines.every((x) => typeof x === 'string'))
            for (const d of o.defines as string[]) configFlags.push(`-D${d}`);
          else if (typeof o.defines === 'object' && o.defines !== null && !Array.isArray(o.defines)) {
            for (const [k, v] of Object.entries(o.defines as Record<string, unknown>)) {
              // A value is text: a string or a number (`true` defines the name as -DNAME does).
              if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) configFlags.push(`-D${k}=${v}`);
              else if (v === true) configFlags.push(`-D${k}`);
              else problems.push(`${configFile}: "defines": the value of ${quoted(k)} must be a string, a number or true; ignoring it`);
            }
          } else problems.push(`${configFile}: "defines" must be a list ("NAME=VALUE") or an object; ignoring it`);
        }
        for (const f of strings('flags')) configFlags.push(f);
        if (typeof o.compileCommands === 'string' && !this.options.compileCommands) {
          compileCommands = isAbsolute(o.compileCommands) ? o.compileCommands : join(base, o.compileCommands);
          flagsText = undefined;
          if (!stat(compileCommands)) {
            problems.push(`${configFile}: compileCommands ${quoted(o.compileCommands)} does not exist`);
            compileCommands = undefined;
          }
        } else if (o.compileCommands !== undefined && typeof o.compileCommands !== 'string')
          problems.push(`${configFile}: "compileCommands" must be a path`);
      }
    }

    // The compiler's flags for this file.
    let buildFlags: { flags: string[]; dir: string } | undefined;
    let flagsFile: string | undefined;
    if (compileCommands) {
      const db = this.read(compileCommands, 'json', stamps);
      if (db.problem) problems.push(db.problem);
      else {
        buildFlags = commandFor(db.value, path);
        if (buildFlags) flagsFile = compileCommands;
      }
    } else if (flagsText) {
      const t = this.read(flagsText, 'text', stamps);
      if (t.problem) problems.push(t.problem);
      else {
        buildFlags = {
          flags: (t.value as string)
            .split(/\r?\n/)
            .map((l) => l.trim())
            .filter(Boolean),
          dir: dirname(flagsText),
        };
        flagsFile = flagsText;
      }
    }
    const flags = parseFlags([
      ...(buildFlags ? absolutize(buildFlags.flags, buildFlags.dir) : []),
      ...configFlags,
      ...absolutize(this.options.extraFlags ?? [], process.cwd()),
    ]);
    const key = [configFile ?? '', flagsFile ?? '', ...stamps, JSON.stringify(this.options.extraFlags ?? [])].join('\u0000');
    if (!configFile && !flagsFile && !this.options.extraFlags?.length) return problems.length ? { ...NO_PROJECT, problems } : NO_PROJECT;
    const command = {
      args: [...(buildFlags ? buildFlags.flags : []), ...configFlags, ...absolutize(this.options.extraFlags ?? [], process.cwd())],
      dir: buildFlags?.dir ?? dirname(path),
    };
    return { key, ...(configFile ? { configFile } : {}), ...(flagsFile ? { flagsFile } : {}), settings, flags, problems, command };
  }

  /** Reads a project file, kept while its mtime and size are the same. */
  private read(path: string, kind: 'json' | 'text', stamps: string[]): { value?: unknown; problem?: string } {
    let st: Stats | undefined;
    try {
      st = this.fs.stat(path);
    } catch (e) {
      return { problem: `${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
    }
    if (!st) return { problem: `${path}: cannot read (ENOENT)` };
    stamps.push(`${path}\u0001${st.mtimeMs}\u0001${st.size}`);
    const hit = this.files.get(path);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit;
    let entry: { mtimeMs: number; size: number; value: unknown; problem?: string };
    if (!st.isFile() || st.size > MAX_PROJECT_FILE_BYTES) {
      entry = {
        mtimeMs: st.mtimeMs,
        size: st.size,
        value: undefined,
        problem: `${path}: not a regular file of at most 64 MB; ignoring it`,
      };
    } else {
      try {
        const text = readBounded(path, MAX_PROJECT_FILE_BYTES);
        if (text === undefined) throw new Error('not a regular file of at most 64 MB');
        entry = { mtimeMs: st.mtimeMs, size: st.size, value: kind === 'json' ? JSON.parse(text) : text };
      } catch (e) {
        entry = { mtimeMs: st.mtimeMs, size: st.size, value: undefined, problem: `${path}: ${(e as Error).message}; ignoring it` };
      }
    }
    if (this.files.size > 64) this.files.clear();
    this.files.set(path, entry);
    return entry;
  }
}

/**
 * The flags of `path` in a compilation database: its own entry, else the entry of another file of
 * the same directory and kind (a new file the database has not seen yet is built like its
 * neighbours), else undefined.
 */
export function commandFor(db: unknown, path: string): { flags: string[]; dir: string } | undefined {
  if (!Array.isArray(db)) return undefined;
  let neighbour: { flags: string[]; dir: string } | undefined;
  const kind = /\.bpf\.c$/.test(path) ? '.bpf.c' : '.c';
  for (const e of db) {
    if (typeof e !== 'object' || e === null) continue;
    const { directory, file, arguments: argv, command } = e as Record<string, unknown>;
    if (typeof directory !== 'string' || typeof file !== 'string') continue;
    const args = Array.isArray(argv)
      ? argv.filter((a): a is string => typeof a === 'string')
      : typeof command === 'string'
        ? splitCommand(command)
        : undefined;
    if (!args) continue;
    const full = resolve(directory, file);
    const entry = { flags: args.slice(1), dir: directory };
    if (full === path) return entry;
    if (!neighbour && dirname(full) === dirname(path) && full.endsWith(kind) && (kind === '.bpf.c' || !full.endsWith('.bpf.c')))
      neighbour = entry;
  }
  return neighbour;
}

/** Splits a shell command line (quotes and backslashes as POSIX shells treat them). */
export function splitCommand(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      cur += s.slice(i + 1, end < 0 ? s.length : end);
      i = end < 0 ? s.length : end;
      inWord = true;
    } else if (c === '"') {
      i++;
      for (; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) i++;
        cur += s[i];
      }
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** Options whose value is a path, joined or separate (`-Idir`, `-I dir`). */
const PATH_OPTIONS = ['-I', '-iquote', '-isystem', '-idirafter', '-include'];

/** Makes the paths of path options absolute against `dir` (where the compiler ran). */
function absolutize(flags: readonly string[], dir: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i];
    const opt = PATH_OPTIONS.find(
      (o) => f === o || (f.startsWith(o) && (o === '-I' || !PATH_OPTIONS.some((p) => p !== o && f.startsWith(p)))),
    );
    if (!opt) {
      out.push(f);
      continue;
    }
    const value = f === opt ? flags[++i] : f.slice(opt.length);
    if (value === undefined) break;
    out.push(opt, isAbsolute(value) ? value : join(dir, value));
  }
  return out;
}

/** Reads the flags that shape the program (others are ignored). */
export function parseFlags(flags: readonly string[]): CompileFlags {
  const quote: string[] = [];
  const include: string[] = [];
  const system: string[] = [];
  const after: string[] = [];
  const forced: string[] = [];
  const defines = new Map<string, string>();
  const undefines: string[] = [];
  let arch: string | undefined;
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i];
    const value = (opt: string): string | undefined => (f === opt ? flags[++i] : f.slice(opt.length));
    if (f.startsWith('-iquote')) push(quote, value('-iquote'));
    else if (f.startsWith('-isystem')) push(system, value('-isystem'));
    else if (f.startsWith('-idirafter')) push(after, value('-idirafter'));
    else if (f === '-include' || (f.startsWith('-include') && !f.startsWith('-include-pch'))) push(forced, value('-include'));
    else if (f.startsWith('-I')) push(include, value('-I'));
    else if (f.startsWith('-D')) {
      const d = value('-D');
      if (!d) continue;
      const eq = d.indexOf('=');
      const name = eq < 0 ? d : d.slice(0, eq);
      if (!/^[A-Za-z_]\w*$/.test(name)) continue;
      defines.set(name, eq < 0 ? '1' : d.slice(eq + 1));
      const m = /^__TARGET_ARCH_(\w+)$/.exec(name);
      if (m && TARGET_ARCH[m[1]]) arch = TARGET_ARCH[m[1]];
    } else if (f.startsWith('-U')) {
      const u = value('-U');
      if (u) {
        defines.delete(u);
        undefines.push(u);
      }
    }
  }
  return { quote, include: [...include, ...system, ...after], defines, undefines, forced, ...(arch ? { arch } : {}) };
}

function push(list: string[], v: string | undefined): void {
  if (v) list.push(v);
}
