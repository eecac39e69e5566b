/**
 * `npm run kernel-db:fixture [SHARED_DATA_DIR]`: makes `test/fixtures/kernel-data-mini`, a
 * miniature copy of the real kernel data that the tests can build a database from in
 * milliseconds, and that is small enough to commit.
 *
 * For each of three real kernels it keeps a few root types (task_struct, sock, bio, ..., the BPF
 * enums, some functions, a kfunc with its `bpf_kfunc` DECL_TAG and a `btf_trace_*` typedef) and
 * everything they reference by value. A named struct or union that is reached only through a
 * pointer becomes a FWD declaration: that keeps each blob at about 500 types (35-45 KB raw,
 * 11-13 KB compressed, against 3-6 MB for the whole kernel) while the roots keep their exact
 * real layouts. It also copies a handful of real config lines and fact
 * table entries, and writes a manifest in the format of the real one.
 *
 * SHARED_DATA_DIR defaults to `../shared/kernel-data` beside the project. The output depends only
 * on the inputs (and on the `xz` version, which the committed files were made with), so running
 * the script again on the same data rewrites the same fixture.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadBtfFile } from '../src/btf/container';
import { Btf, Kind, type BtfType } from '../src/btf/reader';
import { writeBtf } from '../src/btf/writer';
import { readConfig } from '../src/build/inputs';

const repoRoot = resolve(__dirname, '..', '..');
const OUT = join(repoRoot, 'test', 'fixtures', 'kernel-data-mini');

/** The kernels the fixture is cut from: oldest and newest Debian, amd64 and arm64. */
const KERNELS = ['debian-5.10.0-46-amd64', 'debian-6.12.117-arm64', 'debian-7.3.4-amd64'];
/** The kernel whose config is sampled. */
const CONFIG_KERNEL = 'debian-6.12.117-arm64';
/**
 * Config symbols to copy. Most pass the database's config filter; CONFIG_HZ does not, so the
 * fixture also shows that unrelated symbols are dropped. The build fails if one is missing.
 */
const CONFIG_NAMES = [
  'CONFIG_BPF',
  'CONFIG_BPF_SYSCALL',
  'CONFIG_BPF_JIT',
  'CONFIG_BPF_LSM',
  'CONFIG_DEBUG_INFO_BTF',
  'CONFIG_BPF_PRELOAD',
  'CONFIG_HZ',
];

const ROOT_AGGREGATES = ['task_struct', 'sock', 'sock_common', 'bio', 'inode', 'file', 'cred'];
const ROOT_ENUMS = ['bpf_func_id', 'bpf_prog_type', 'bpf_map_type'];
const ROOT_FUNCS = ['do_sys_openat2', 'bpf_lsm_file_open'];
/** Taken with its `bpf_kfunc` DECL_TAG where the kernel's BTF has one (6.2+ with a new pahole). */
const ROOT_KFUNC = 'bpf_task_acquire';
const ROOT_TYPEDEFS = ['btf_trace_sched_switch'];
/** Also kept: the type that tells the extractor the target's pointer width. */
const ROOT_INTS = ['long unsigned int'];

/**
 * Fact entries to copy: helpers that appeared before, between and after the fixture kernels'
 * versions (5.3, 5.10, 5.11), picked among those with short program-type lists to stay small.
 */
const HELPERS = ['bpf_send_signal', 'bpf_d_path', 'bpf_task_storage_get'];
const SECTIONS = ['kprobe', 'fentry', 'lsm'];

/** Finds xz: the Debian location first, then PATH. */
function xzPath(): string {
  return existsSync('/usr/bin/xz') ? '/usr/bin/xz' : 'xz';
}

/**
 * xz-compresses `data` with fixed options. A 1 MiB dictionary (instead of -9's 64 MiB) is plenty
 * for a few kilobytes and keeps decompression memory small.
 */
function xz(data: Uint8Array): Uint8Array {
  const r = spawnSync(xzPath(), ['--format=xz', '--check=crc64', '--lzma2=preset=9e,dict=1MiB', '-c'], {
    input: data,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`xz failed: ${r.error?.message ?? r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * The ids to keep from `btf`: `full` are kept as they are, `fwd` (named structs and unions only
 * reached through pointers) become FWD declarations.
 */
function selectTypes(btf: Btf, roots: number[]): { full: Set<number>; fwd: Set<number> } {
  const full = new Set<number>();
  const fwd = new Set<number>();
  // How each id was reached: 'v' by value, 'p' only through a pointer. By value wins.
  const reached = new Map<number, 'v' | 'p'>();
  const stack: [number, boolean][] = roots.map((id) => [id, false]);
  while (stack.length) {
    const [id, viaPointer] = stack.pop()!;
    if (id === 0) continue;
    const prev = reached.get(id);
    if (prev === 'v' || (prev === 'p' && viaPointer)) continue;
    reached.set(id, viaPointer ? 'p' : 'v');
    const k = btf.kind(id);
    if ((k === Kind.Struct || k === Kind.Union) && viaPointer && btf.name(id) !== '') {
      fwd.add(id);
      continue;
    }
    fwd.delete(id);
    full.add(id);
    const push = (ref: number, ptr: boolean) => stack.push([ref, ptr]);
    switch (k) {
      case Kind.Struct:
      case Kind.Union:
        for (const m of btf.members(id)) push(m.type, false);
        break;
      case Kind.Ptr:
        push(btf.ref(id), true);
        break;
      case Kind.Typedef:
      case Kind.Const:
      case Kind.Volatile:
      case Kind.Restrict:
      case Kind.TypeTag:
      case Kind.DeclTag:
        push(btf.ref(id), viaPointer);
        break;
      case Kind.Array: {
        const a = btf.arrayInfo(id);
        push(a.type, viaPointer);
        push(a.indexType, viaPointer);
        break;
      }
      case Kind.Func:
        push(btf.ref(id), true);
        break;
      case Kind.FuncProto:
        // A prototype names its parameter types; C needs no definition of them to declare it.
        push(btf.ref(id), true);
        for (const p of btf.params(id)) push(p.type, true);
        break;
      case Kind.Var:
        push(btf.ref(id), false);
        break;
      default:
        break;
    }
  }
  return { full, fwd };
}

/** The root type ids of `btf`, failing loudly when a required one is missing. */
function findRoots(btf: Btf, name: string): number[] {
  const roots: number[] = [];
  const firstOf = (want: (id: number) => boolean, what: string, required: boolean) => {
    for (let id = 1; id <= btf.count; id++) {
      if (want(id)) {
        roots.push(id);
        return id;
      }
    }
    if (required) throw new Error(`${name}: no ${what}`);
    return 0;
  };
  const kindIs = (id: number, ...kinds: Kind[]) => kinds.includes(btf.kind(id));
  for (const a of ROOT_AGGREGATES) firstOf((id) => kindIs(id, Kind.Struct) && btf.name(id) === a && btf.vlen(id) > 0, `struct ${a}`, true);
  for (const e of ROOT_ENUMS) firstOf((id) => kindIs(id, Kind.Enum, Kind.Enum64) && btf.name(id) === e, `enum ${e}`, true);
  for (const f of ROOT_FUNCS) firstOf((id) => kindIs(id, Kind.Func) && btf.name(id) === f, `function ${f}`, true);
  for (const t of ROOT_TYPEDEFS) firstOf((id) => kindIs(id, Kind.Typedef) && btf.name(id) === t, `typedef ${t}`, true);
  for (const i of ROOT_INTS) firstOf((id) => kindIs(id, Kind.Int) && btf.name(id) === i, `int ${i}`, true);
  // The kfunc is optional: 5.10 has none, and its BTF has no DECL_TAG records at all.
  const tag = firstOf(
    (id) => kindIs(id, Kind.DeclTag) && btf.name(id) === 'bpf_kfunc' && btf.name(btf.ref(id)) === ROOT_KFUNC,
    `kfunc ${ROOT_KFUNC}`,
    false,
  );
  if (tag === 0) firstOf((id) => kindIs(id, Kind.Func) && btf.name(id) === ROOT_KFUNC, `function ${ROOT_KFUNC}`, false);
  return roots;
}

/** Rewrites every type id in `t` through `map`. */
function remap(t: BtfType, map: (id: number) => number): BtfType {
  switch (t.kind) {
    case Kind.Ptr:
    case Kind.Typedef:
    case Kind.Volatile:
    case Kind.Const:
    case Kind.Restrict:
    case Kind.TypeTag:
    case Kind.Func:
    case Kind.Var:
    case Kind.DeclTag:
      return { ...t, type: map(t.type) };
    case Kind.Array:
      return { ...t, type: map(t.type), indexType: map(t.indexType) };
    case Kind.Struct:
    case Kind.Union:
      return { ...t, members: t.members.map((m) => ({ ...m, type: map(m.type) })) };
    case Kind.FuncProto:
      return { ...t, returnType: map(t.returnType), params: t.params.map((p) => ({ ...p, type: map(p.type) })) };
    case Kind.Datasec:
      return { ...t, vars: t.vars.map((v) => ({ ...v, type: map(v.type) })) };
    default:
      return t;
  }
}

/** Cuts the fixture blob out of one real kernel's BTF. */
function miniBtf(btf: Btf, name: string): Uint8Array {
  const { full, fwd } = selectTypes(btf, findRoots(btf, name));
  // Keeping the original relative order keeps the fixture's type ids readable against the source.
  const kept = [...full, ...fwd].sort((a, b) => a - b);
  const newId = new Map<number, number>([[0, 0]]);
  kept.forEach((id, i) => newId.set(id, i + 1));
  const map = (id: number) => {
    const n = newId.get(id);
    if (n === undefined) throw new Error(`${name}: type ${id} is referenced but was not selected`);
    return n;
  };
  const types = kept.map(
    (id): BtfType =>
      fwd.has(id) ? { kind: Kind.Fwd, name: btf.name(id), kindFlag: btf.kind(id) === Kind.Union } : remap(btf.type(id), map),
  );
  return writeBtf(types);
}

/** Counts records of `kind`. */
function countKind(btf: Btf, kind: Kind): number {
  let n = 0;
  for (let id = 1; id <= btf.count; id++) if (btf.kind(id) === kind) n++;
  return n;
}

/** Real lines of the sampled config, in the order of {@link CONFIG_NAMES}. */
async function configLines(src: string): Promise<string> {
  const path = join(src, 'config', `${CONFIG_KERNEL}.config.xz`);
  const values = await readConfig(path);
  const lines = CONFIG_NAMES.map((n) => {
    const v = values.get(n);
    if (v === undefined) throw new Error(`${path}: no ${n}`);
    return v === 'n' ? `# ${n} is not set` : `${n}=${v}`;
  });
  return `# Lines copied from ${CONFIG_KERNEL}'s real .config by kernel-db/scripts/make-fixture.ts\n${lines.join('\n')}\n`;
}

/** Entries of a real fact table, picked by `key`, in the order of `wanted`. */
function factEntries(src: string, file: string, key: string, wanted: string[]): unknown[] {
  const all = JSON.parse(readFileSync(join(src, 'facts', file), 'utf8')) as Record<string, unknown>[];
  return wanted.map((w) => {
    const e = all.find((x) => x[key] === w);
    if (!e) throw new Error(`facts/${file}: no entry with ${key} ${w}`);
    return e;
  });
}

async function main(argv: string[]): Promise<void> {
  const src = resolve(argv[0] ?? join(repoRoot, '..', 'shared', 'kernel-data'));
  if (!existsSync(join(src, 'btf', 'MANIFEST.json')))
    throw new Error(`${src} holds no btf/MANIFEST.json; pass the shared kernel-data folder`);
  const manifest = JSON.parse(readFileSync(join(src, 'btf', 'MANIFEST.json'), 'utf8')) as Record<string, unknown>[];

  // The expected database beside the inputs is regenerated separately (kernel-db:build).
  for (const d of ['btf', 'config', 'facts']) rmSync(join(OUT, d), { recursive: true, force: true });
  for (const d of ['btf', 'config', 'facts']) mkdirSync(join(OUT, d), { recursive: true });

  const entries: Record<string, unknown>[] = [];
  for (const name of KERNELS) {
    const real = manifest.find((m) => m.name === name);
    if (!real) throw new Error(`${name} is not in ${src}/btf/MANIFEST.json`);
    const loaded = await loadBtfFile(join(src, 'btf', `${name}.btf.xz`));
    const raw = miniBtf(loaded.btf, name);
    // Read the result back: the fixture must be valid BTF before anything depends on it.
    const mini = new Btf(raw, `${name} (fixture)`);
    const packed = xz(raw);
    writeFileSync(join(OUT, 'btf', `${name}.btf.xz`), packed);
    const hasConfig = name === CONFIG_KERNEL;
    entries.push({
      ...real,
      sha256_of_uncompressed_btf: sha256(raw),
      btf_bytes: raw.length,
      btf_xz_bytes: packed.length,
      struct_count: countKind(mini, Kind.Struct),
      type_count: mini.count,
      func_count: countKind(mini, Kind.Func),
      has_config: hasConfig,
      ...(hasConfig ? {} : { config_package: '', config_source: '' }),
      btf_source: `subset of btf/${name}.btf.xz (sha256 ${loaded.sha256}) made by kernel-db/scripts/make-fixture.ts`,
    });
    process.stderr.write(`${name}: ${loaded.btf.count} types → ${mini.count} (${raw.length} bytes, ${packed.length} xz)\n`);
  }
  writeFileSync(join(OUT, 'btf', 'MANIFEST.json'), `${JSON.stringify(entries, null, 1)}\n`);
  writeFileSync(join(OUT, 'config', `${CONFIG_KERNEL}.config.xz`), xz(Buffer.from(await configLines(src), 'utf8')));
  writeFileSync(join(OUT, 'facts', 'helpers.json'), `${JSON.stringify(factEntries(src, 'helpers.json', 'name', HELPERS), null, 1)}\n`);
  writeFileSync(join(OUT, 'facts', 'sections.json'), `${JSON.stringify(factEntries(src, 'sections.json', 'prefix', SECTIONS), null, 1)}\n`);
  process.stderr.write(
    `kernel-db:fixture: wrote ${OUT}; now run npm run kernel-db:build -- test/fixtures/kernel-data-mini --out test/fixtures/kernel-data-mini/expected\n`,
  );
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`kernel-db:fixture: ${(e as Error).message}\n`);
  process.exit(1);
});
