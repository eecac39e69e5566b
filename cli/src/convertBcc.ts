/**
 * `ebpf-portability convert-bcc <file>`: a BCC program (a C file, or a Python tool's
 * `BPF(text=…)` program) written out as a libbpf CO-RE `.bpf.c` (server/src/driver/convertBcc.ts),
 * with the list of what it could not convert.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KernelDb } from '../../kernel-db/src/query/db';
import { decodeSource } from '../../server/src/analysis/fixall';
import { convertBcc } from '../../server/src/driver/convertBcc';
import { Engine } from '../../server/src/driver/engine';
import { DEFAULT_SETTINGS } from '../../server/src/driver/settings';
import { loadCParser } from '../../server/src/parse/documents';
import { parseArgs, UsageError } from './args';
import type { Io } from './db';

const USAGE = `usage: ebpf-portability convert-bcc <file> [-o OUT] [--stdout] [--force]

Writes a libbpf CO-RE program (.bpf.c) from a BCC program: a C file BCC compiles, or the program a
Python tool hands to BPF(text=…). Maps become BTF-defined maps, map methods libbpf helpers, probes
SEC() programs, kernel pointer reads BPF_CORE_READ; what it could not convert is listed.

options:
  -o, --output OUT   where to write (default: beside the input, NAME.bpf.c)
  --stdout           print the program instead of writing it
  --force            overwrite an existing output file
`;

/** Runs `convert-bcc`; returns the exit status (0 written, 1 written with items to finish by hand). */
export async function convertBccCommand(argv: string[], io: Io): Promise<number> {
  const args = parseArgs(argv, { flags: ['help', 'stdout', 'force'], valued: ['output'], short: { o: 'output' } });
  if (args.flags.has('help')) {
    io.out(USAGE);
    return 0;
  }
  if (args.positional.length !== 1)
    throw new UsageError('convert-bcc takes one file, e.g. ebpf-portability convert-bcc tools/opensnoop.py');
  const path = args.positional[0];
  if (!existsSync(path)) throw new UsageError(`cannot read ${path}: no such file`);
  const text = decodeSource(new Uint8Array(readFileSync(path))).text;
  const db = KernelDb.open({ noUser: true });
  const parser = await loadCParser();
  const engine = new Engine(db, (t) => parser.parseText(t));
  const out = args.options.get('output') ?? join(dirname(path), `${basename(path).replace(/\.(py|c)$/i, '')}.bpf.c`);
  const uri = pathToFileURL(resolve(out)).href;
  const analyze = (c: string) => {
    const tree = parser.parseText(c);
    if (!tree) return [];
    try {
      // The default settings load with libbpf: the converted program's own loader.
      return engine.analyzeDocument(uri, c, tree, DEFAULT_SETTINGS).findings;
    } finally {
      tree.delete();
    }
  };
  const r = convertBcc(path, text, db, analyze);
  if (!r.text) {
    io.err(`ebpf-portability: ${path}: ${r.notes.join('; ')}\n`);
    return 2;
  }
  if (args.flags.has('stdout')) io.out(r.text);
  else {
    if (existsSync(out) && !args.flags.has('force')) throw new UsageError(`${out} exists (--force overwrites it)`);
    writeFileSync(out, r.text);
    io.out(`wrote ${out}\n`);
  }
  const notes = [
    ...r.notes,
    'compile with clang -target bpf -O2 -g -D__TARGET_ARCH_<arch> (x86, arm64, …) against a vmlinux.h (bpftool btf dump file /sys/kernel/btf/vmlinux format c)',
  ];
  io.err(`${notes.map((n) => `note: ${n}`).join('\n')}\n`);
  return r.notes.length ? 1 : 0;
}
