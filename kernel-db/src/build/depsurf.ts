/**
 * Reads the DepSurf-derived tables (`depsurf/`): 25 Ubuntu kernel images whose struct fields have
 * C types but no offsets or bitfield widths. Those kernels are marked fidelity `depsurf`, and
 * their unknown numbers are stored as -1 so that queries can say "unknown" rather than guess.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { aggregateOfCType, normalizeCType } from '../ctype';
import type { DbBuilder } from '../store/builder';
import type { KernelMeta } from '../store/schema';
import { normalizeArch, readConfig, readJsonl, sha256File } from './inputs';

interface Image {
  index: number;
  name: string;
  release: string;
  version: string;
  flavour: string;
  arch: string;
}

/** The DepSurf image list as kernel metadata, or [] when the folder is absent. */
export function depsurfKernels(dir: string): { image: Image; meta: Omit<KernelMeta, 'sha256' | 'hasHelperEnum'> }[] {
  const p = join(dir, 'depsurf', 'images.json');
  if (!existsSync(p)) return [];
  const doc = JSON.parse(readFileSync(p, 'utf8')) as { source: string; images: Image[] };
  return doc.images.map((image) => ({
    image,
    meta: {
      name: `ubuntu-${image.name}`,
      release: image.release,
      version: image.version,
      arch: normalizeArch(image.arch),
      distro: 'ubuntu',
      flavour: image.flavour,
      fidelity: 'depsurf' as const,
      source: `Ubuntu ${image.release} (${image.arch}) via DepSurf dataset ${doc.source}`,
      hasConfig: existsSync(join(dir, 'depsurf', 'configs', `${image.name}.config.xz`)),
      hasFuncs: true,
    },
  }));
}

/**
 * Adds every DepSurf fact to the builder. `kernelOf` maps a DepSurf image index to the builder's
 * kernel index. Returns the input files read, with their hashes.
 */
export async function addDepsurf(
  dir: string,
  b: DbBuilder,
  kernelOf: (image: number) => number,
  images: Image[],
  keepConfig: (name: string) => boolean,
): Promise<{ file: string; sha256: string }[]> {
  const d = join(dir, 'depsurf');
  const used: { file: string; sha256: string }[] = [];
  const read = async (f: string) => {
    used.push({ file: `depsurf/${f}`, sha256: sha256File(join(d, f)) });
    return readJsonl(join(d, f));
  };
  const each = (imgs: unknown, fn: (k: number) => void) => {
    for (const i of (imgs as number[] | undefined) ?? []) fn(kernelOf(i));
  };

  for (const row of await read('structs.jsonl.xz')) {
    const name = row.name as string;
    const kind = row.kind as 'struct' | 'union';
    for (const v of row.variants as { fields: Record<string, unknown>[]; images: number[]; size?: number }[]) {
      const fields = v.fields.map((f) => {
        const type = normalizeCType(String(f.type));
        return {
          name: String(f.name),
          type,
          tags: '',
          offsetBits: typeof f.bits_offset === 'number' ? f.bits_offset : -1,
          bitfieldBits: typeof f.bits_offset === 'number' ? (typeof f.bitfield_bits === 'number' ? f.bitfield_bits : 0) : -1,
          size: -1,
          anon: '',
          ref: aggregateOfCType(type),
        };
      });
      each(v.images, (k) => b.addAggregate(k, name, kind, v.size ?? -1, fields));
    }
  }

  for (const row of await read('functions.jsonl.xz')) {
    const name = row.name as string;
    const inlined = new Set((row.images_inlined_fully as number[] | undefined) ?? []);
    const symbol = (row.images_plain_symbol as number[] | undefined) ?? (row.images_present as number[]);
    each(
      symbol.filter((i) => !inlined.has(i)),
      (k) => b.addFunc(k, name),
    );
    each([...inlined], (k) => b.addFunc(k, name, { inlined: true }));
    if (name.startsWith('bpf_lsm_')) {
      for (const p of (row.protos as { proto: string; images: number[] }[] | undefined) ?? []) {
        each(p.images, (k) => b.addProto(k, name, normalizeCType(p.proto.replace(/;$/, ''))));
      }
    }
  }

  for (const row of await read('enums.jsonl.xz')) {
    const enumName = row.enum === '(anon)' ? '' : String(row.enum);
    const name = String(row.value_name);
    if ('value' in row) each(row.images, (k) => b.addEnumValue(k, enumName, name, row.value as number));
    for (const v of (row.values as { value: number; images: number[] }[] | undefined) ?? []) {
      each(v.images, (k) => b.addEnumValue(k, enumName, name, v.value));
    }
  }

  for (const row of await read('tracepoints.jsonl.xz')) {
    const event = String(row.name);
    for (const v of row.variants as { images: number[]; class: string; struct_size: number; fields: Record<string, unknown>[] }[]) {
      const fields = v.fields.map((f) => {
        const type = normalizeCType(String(f.type));
        return {
          name: String(f.name),
          type,
          tags: '',
          offsetBits: Number(f.bits_offset),
          bitfieldBits: typeof f.bitfield_bits === 'number' ? f.bitfield_bits : 0,
          size: -1,
          anon: '',
          ref: aggregateOfCType(type),
        };
      });
      each(v.images, (k) => {
        b.addTracepoint(k, event, v.class);
        b.addAggregate(k, `trace_event_raw_${v.class}`, 'struct', v.struct_size, fields);
      });
    }
  }

  for (const row of await read('lsm_hooks.jsonl.xz')) {
    each(row.bpf_lsm_func_images, (k) => b.addFunc(k, `bpf_lsm_${row.name}`));
  }

  for (const img of images) {
    const f = join(d, 'configs', `${img.name}.config.xz`);
    if (!existsSync(f)) continue;
    used.push({ file: `depsurf/configs/${img.name}.config.xz`, sha256: sha256File(f) });
    for (const [n, v] of await readConfig(f)) if (keepConfig(n)) b.addConfig(kernelOf(img.index), n, v);
  }
  return used;
}
