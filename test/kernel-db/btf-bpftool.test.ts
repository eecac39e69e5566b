/**
 * The BTF reader agrees exactly with bpftool (libbpf's own parser) on real kernel BTF.
 *
 * Each blob is decompressed through the project's container code, dumped with
 * `bpftool btf dump file X format raw`, and every line of the dump is compared with what the
 * reader says about the same type id: kind, name, sizes, referenced ids, every member's offset and
 * bitfield width, every enumerator's value (with its signedness), parameters, variables and tags.
 * The committed fixture blobs are checked the same way, which also proves that libbpf accepts what
 * `kernel-db/src/btf/writer.ts` writes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { loadBtfFile } from '../../kernel-db/src/btf/container';
import { type Btf, KIND_NAMES, Kind } from '../../kernel-db/src/btf/reader';
import { writeBtf } from '../../kernel-db/src/btf/writer';
import { EVERY_KIND, MINI_DATA, NO_SHARED_DATA, findBpftool, sharedKernelData } from './helpers';

/** Real blobs: old and new, amd64 and arm64, generic and cloud, deduplicated and not. */
const REAL_BLOBS = [
  'debian-5.10.0-46-amd64',
  'debian-6.12.117-arm64',
  'debian-7.3.4-cloud-amd64',
  // 27 MB, about 562k types, never deduplicated: the size stress case.
  'centos8-4.18.0-147.5.1.el8_1-arm64',
  // Made by pahole from vendor debuginfo rather than by the kernel build.
  'kylin-v10sp3-4.19.90-52.22.v2207.ky10-arm64',
];

const shared = sharedKernelData();
const bpftool = findBpftool();

/** Why bpftool cannot be used, or undefined when it can. */
function bpftoolProblem(): string | undefined {
  if (!bpftool) return 'bpftool not found (install the Debian package bpftool; it lives at /usr/sbin/bpftool)';
  const r = spawnSync(bpftool, ['version'], { encoding: 'utf8' });
  const m = /v(\d+)\.(\d+)/.exec(r.stdout ?? '');
  if (r.status !== 0 || !m) return `${bpftool} version failed: ${r.stderr || r.error?.message}`;
  // bpftool 7.0 (libbpf 1.0) first printed ENUM64 and enum signedness (`encoding=`), which the
  // exact comparison below relies on.
  if (Number(m[1]) < 7) return `${bpftool} is v${m[1]}.${m[2]}; v7.0 or newer is needed (it prints ENUM64 and enum signedness)`;
  return undefined;
}
const bpftoolSkip = bpftoolProblem();

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'btf-bpftool-'));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Manifest type counts by blob name, from both manifests of the shared data. */
function manifestTypeCounts(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [file, key] of [
    ['MANIFEST.json', 'type_count'],
    ['MANIFEST-btfhub.json', 'btf_type_count'],
  ] as const) {
    const p = join(dir, 'btf', file);
    if (!existsSync(p)) continue;
    for (const m of JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>[]) {
      out.set(String(m.name).replace(/\.btf\.xz$/, ''), Number(m[key]));
    }
  }
  return out;
}

for (const name of REAL_BLOBS) {
  test(`${name}: the reader agrees with bpftool on every type`, async (t) => {
    if (!shared) return t.skip(NO_SHARED_DATA);
    if (bpftoolSkip) return t.skip(bpftoolSkip);
    const btf = await checkAgainstBpftool(join(shared, 'btf', `${name}.btf.xz`), name);
    const expected = manifestTypeCounts(shared).get(name);
    assert.ok(expected !== undefined, `${name} is missing from the manifests`);
    assert.equal(btf.count, expected, `${name}: type count differs from the manifest`);
  });
}

test('committed fixture blobs: bpftool accepts them and agrees with the reader', async (t) => {
  if (bpftoolSkip) return t.skip(bpftoolSkip);
  const dir = join(MINI_DATA, 'btf');
  const blobs = readdirSync(dir)
    .filter((f) => f.endsWith('.btf.xz'))
    .sort();
  assert.ok(blobs.length >= 3, `expected at least 3 fixture blobs in ${dir}`);
  for (const f of blobs) await checkAgainstBpftool(join(dir, f), f.replace(/\.btf\.xz$/, ''));
});

test('a hand-made blob with every kind and extreme values agrees with bpftool', async (t) => {
  if (bpftoolSkip) return t.skip(bpftoolSkip);
  const path = join(tmp, 'every-kind.btf');
  writeFileSync(path, writeBtf(EVERY_KIND));
  const btf = await checkAgainstBpftool(path, 'every-kind');
  assert.equal(btf.count, EVERY_KIND.length);
});

/** Dumps `path` with bpftool and compares every type with the reader; returns the parsed BTF. */
async function checkAgainstBpftool(path: string, name: string): Promise<Btf> {
  const loaded = await loadBtfFile(path);
  const rawPath = join(tmp, `${name}.btf`);
  const dumpPath = join(tmp, `${name}.txt`);
  writeFileSync(rawPath, loaded.raw);
  // The dump of a large kernel is tens of megabytes: write it to a file rather than a pipe buffer.
  const fd = openSync(dumpPath, 'w');
  let r: SpawnSyncReturns<string>;
  try {
    r = spawnSync(bpftool!, ['btf', 'dump', 'file', rawPath, 'format', 'raw'], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
  } finally {
    closeSync(fd);
  }
  assert.equal(r.status, 0, `bpftool failed on ${name}: ${r.stderr || r.error?.message}`);
  const dump = readFileSync(dumpPath, 'utf8');
  rmSync(rawPath);
  rmSync(dumpPath);

  const { problems, seen } = compareDump(loaded.btf, dump);
  assert.equal(
    problems.length,
    0,
    `${name}: ${problems.length} disagreement(s) between the reader and bpftool; the first ones:\n${problems.slice(0, 25).join('\n')}`,
  );
  // Guard against a comparison that silently looked at nothing.
  assert.equal(seen.types, loaded.btf.count, `${name}: bpftool listed ${seen.types} types, the reader ${loaded.btf.count}`);
  assert.ok(seen.members > 0 && seen.enumValues > 0, `${name}: the dump had no members or enum values to compare`);
  return loaded.btf;
}

/** One `[id] KIND 'name' key=value ...` record of a raw dump, with its indented lines. */
interface DumpRecord {
  id: number;
  kind: string;
  name: string;
  attrs: Map<string, string>;
  subs: Map<string, string>[];
}

const HEADER = /^\[(\d+)\] ([A-Z0-9_]+) '([^']*)'(.*)$/;
const NAMED_SUB = /^\t'([^']*)'(.*)$/;
const DATASEC_SUB = /^\ttype_id=(\d+) offset=(\d+) size=(\d+) \(([A-Z0-9_]+) '([^']*)'\)$/;

/** Parses ` key=value key=value,` (VAR prints a comma after `type_id`). */
function parseAttrs(text: string, problems: string[], where: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const word of text.split(' ')) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    if (eq <= 0) {
      problems.push(`${where}: cannot parse "${word}" in bpftool's output`);
      continue;
    }
    out.set(word.slice(0, eq), word.slice(eq + 1).replace(/,$/, ''));
  }
  return out;
}

/** bpftool prints '(anon)' for name offset 0; the reader returns ''. */
const dumpName = (s: string) => (s === '(anon)' ? '' : s);

/** Walks the dump line by line (without splitting it into one huge array) and compares each record. */
function compareDump(btf: Btf, dump: string): { problems: string[]; seen: { types: number; members: number; enumValues: number } } {
  const problems: string[] = [];
  const seen = { types: 0, members: 0, enumValues: 0 };
  let cur: DumpRecord | undefined;
  const finish = () => {
    if (!cur) return;
    seen.types++;
    if (cur.id !== seen.types) problems.push(`[${cur.id}] bpftool's ids are not consecutive: expected [${seen.types}]`);
    else if (cur.id > btf.count) problems.push(`[${cur.id}] bpftool lists a type beyond the reader's ${btf.count}`);
    else compareRecord(btf, cur, problems, seen);
  };
  let start = 0;
  while (start < dump.length) {
    let end = dump.indexOf('\n', start);
    if (end < 0) end = dump.length;
    const line = dump.slice(start, end);
    start = end + 1;
    if (line === '') continue;
    if (line.startsWith('[')) {
      finish();
      const m = HEADER.exec(line);
      if (!m) {
        problems.push(`cannot parse bpftool line: ${line}`);
        cur = undefined;
        continue;
      }
      cur = { id: Number(m[1]), kind: m[2], name: dumpName(m[3]), attrs: new Map(), subs: [] };
      cur.attrs = parseAttrs(m[4], problems, `[${m[1]}]`);
    } else if (line.startsWith('\t') && cur) {
      const d = DATASEC_SUB.exec(line);
      if (d) {
        cur.subs.push(
          new Map([
            ['type_id', d[1]],
            ['offset', d[2]],
            ['size', d[3]],
            ['ref_kind', d[4]],
            ['ref_name', dumpName(d[5])],
          ]),
        );
        continue;
      }
      const m = NAMED_SUB.exec(line);
      if (!m) {
        problems.push(`[${cur.id}] cannot parse bpftool line: ${line}`);
        continue;
      }
      const sub = parseAttrs(m[2], problems, `[${cur.id}]`);
      sub.set('name', dumpName(m[1]));
      cur.subs.push(sub);
    } else {
      problems.push(`cannot parse bpftool line: ${line}`);
    }
  }
  finish();
  return { problems, seen };
}

const INT_ENCODING = ['(none)', 'SIGNED', 'CHAR', 'UNKN', 'BOOL'];
const FUNC_LINKAGE = ['static', 'global', 'extern'];
const VAR_LINKAGE = ['static', 'global', 'extern'];

/** What bpftool should print for type `id`: header attributes and one map per indented line. */
function expectedRecord(btf: Btf, id: number): { attrs: [string, string | number][]; subs: [string, string | number][][] } {
  const k = btf.kind(id);
  switch (k) {
    case Kind.Int: {
      const i = btf.intInfo(id);
      return {
        attrs: [
          ['size', btf.size(id)],
          ['bits_offset', i.offset],
          ['nr_bits', i.bits],
          ['encoding', INT_ENCODING[i.encoding] ?? 'UNKN'],
        ],
        subs: [],
      };
    }
    case Kind.Ptr:
    case Kind.Typedef:
    case Kind.Volatile:
    case Kind.Const:
    case Kind.Restrict:
    case Kind.TypeTag:
      return { attrs: [['type_id', btf.ref(id)]], subs: [] };
    case Kind.Array: {
      const a = btf.arrayInfo(id);
      return {
        attrs: [
          ['type_id', a.type],
          ['index_type_id', a.indexType],
          ['nr_elems', a.nelems],
        ],
        subs: [],
      };
    }
    case Kind.Struct:
    case Kind.Union:
      return {
        attrs: [
          ['size', btf.size(id)],
          ['vlen', btf.vlen(id)],
        ],
        subs: btf.members(id).map((m) => {
          const s: [string, string | number][] = [
            ['name', m.name],
            ['type_id', m.type],
            ['bits_offset', m.offsetBits],
          ];
          if (m.bitfieldBits !== 0) s.push(['bitfield_size', m.bitfieldBits]);
          return s;
        }),
      };
    case Kind.Enum:
    case Kind.Enum64: {
      const signed = btf.kindFlag(id);
      const suffix = k === Kind.Enum64 ? (signed ? 'LL' : 'ULL') : '';
      return {
        attrs: [
          ['encoding', signed ? 'SIGNED' : 'UNSIGNED'],
          ['size', btf.size(id)],
          ['vlen', btf.vlen(id)],
        ],
        subs: btf.enumValues(id).map((v) => [
          ['name', v.name],
          ['val', `${v.value}${suffix}`],
        ]),
      };
    }
    case Kind.Fwd:
      return { attrs: [['fwd_kind', btf.kindFlag(id) ? 'union' : 'struct']], subs: [] };
    case Kind.Func:
      return {
        attrs: [
          ['type_id', btf.ref(id)],
          ['linkage', FUNC_LINKAGE[btf.vlen(id)] ?? '(unknown)'],
        ],
        subs: [],
      };
    case Kind.FuncProto:
      return {
        attrs: [
          ['ret_type_id', btf.ref(id)],
          ['vlen', btf.vlen(id)],
        ],
        subs: btf.params(id).map((p) => [
          ['name', p.name],
          ['type_id', p.type],
        ]),
      };
    case Kind.Var:
      return {
        attrs: [
          ['type_id', btf.ref(id)],
          ['linkage', VAR_LINKAGE[btf.varLinkage(id)] ?? '(unknown)'],
        ],
        subs: [],
      };
    case Kind.Datasec:
      return {
        attrs: [
          ['size', btf.size(id)],
          ['vlen', btf.vlen(id)],
        ],
        subs: btf.datasecVars(id).map((v) => [
          ['type_id', v.type],
          ['offset', v.offset],
          ['size', v.size],
          ['ref_kind', KIND_NAMES[btf.kind(v.type)]],
          ['ref_name', btf.name(v.type)],
        ]),
      };
    case Kind.Float:
      return { attrs: [['size', btf.size(id)]], subs: [] };
    case Kind.DeclTag:
      return {
        attrs: [
          ['type_id', btf.ref(id)],
          ['component_idx', btf.declTagComponent(id)],
        ],
        subs: [],
      };
    default:
      return { attrs: [['unknown_kind', k]], subs: [] };
  }
}

/** Compares one dump record with the reader, appending a message per difference. */
function compareRecord(btf: Btf, rec: DumpRecord, problems: string[], seen: { members: number; enumValues: number }): void {
  const id = rec.id;
  const kind = KIND_NAMES[btf.kind(id)] ?? `kind ${btf.kind(id)}`;
  const where = `[${id}] ${rec.kind} '${rec.name}'`;
  if (kind !== rec.kind) {
    problems.push(`${where}: kind is ${rec.kind} in bpftool, ${kind} in the reader`);
    return;
  }
  if (btf.name(id) !== rec.name) problems.push(`${where}: name is '${rec.name}' in bpftool, '${btf.name(id)}' in the reader`);
  const exp = expectedRecord(btf, id);
  compareAttrs(where, rec.attrs, exp.attrs, problems);
  if (exp.subs.length !== rec.subs.length) {
    problems.push(`${where}: bpftool lists ${rec.subs.length} members/values/parameters, the reader ${exp.subs.length}`);
    return;
  }
  if (rec.kind === 'STRUCT' || rec.kind === 'UNION') seen.members += rec.subs.length;
  if (rec.kind === 'ENUM' || rec.kind === 'ENUM64') seen.enumValues += rec.subs.length;
  exp.subs.forEach((s, i) => compareAttrs(`${where} item ${i} ('${rec.subs[i].get('name') ?? ''}')`, rec.subs[i], s, problems));
}

function compareAttrs(where: string, got: Map<string, string>, want: [string, string | number][], problems: string[]): void {
  const wantKeys = new Set(want.map(([k]) => k));
  for (const [k, v] of want) {
    const g = got.get(k);
    if (g === undefined) problems.push(`${where}: bpftool does not print ${k}; the reader has ${k}=${v}`);
    else if (g !== String(v)) problems.push(`${where}: ${k} is ${g} in bpftool, ${v} in the reader`);
  }
  for (const k of got.keys())
    if (!wantKeys.has(k)) problems.push(`${where}: bpftool prints ${k}=${got.get(k)}, which the reader does not have`);
}
