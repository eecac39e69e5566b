/**
 * What a kernel database holds: the kernel list (in the container header) and one table per kind
 * of fact. Every row carries a kernel set (an index into the interned bitsets): the kernels on
 * which exactly this fact holds. A fact is stored once however many kernels share it.
 *
 * Strings are interned (id 0 is ''); kernel set 0 is the empty set.
 */

/** How much a kernel's data can say. */
export type Fidelity =
  /** Full BTF of a distro or user build: every type, offset, bitfield, function, enum. */
  | 'btf'
  /** Full BTF, but of a minimal BPF-test config: a type missing may only be configured out. */
  | 'btf-minimal-config'
  /** BTF without FUNC records (old pahole): types and enums only, no function list. */
  | 'btf-types-only'
  /** DepSurf-derived: fields and C types without offsets or bitfield widths. */
  | 'depsurf';

/** One kernel of the database. */
export interface KernelMeta {
  /** Unique name, e.g. `debian-6.1.0-56-amd64`, `ubuntu-4.15.0-20-generic-amd64`. */
  readonly name: string;
  /** `uname -r` of the build. */
  readonly release: string;
  /** Upstream version, `M.m.p`. */
  readonly version: string;
  /** Normalised architecture: `x86_64`, `arm64`, `arm`, `ppc64le`, `riscv64`, `s390x`. */
  readonly arch: string;
  /** Distro family: `debian`, `ubuntu`, `rhel`, `openeuler`, `arch`, `vanilla`, `local`, `unknown`, `user`. */
  readonly distro: string;
  /** Build flavour, e.g. `generic`, `cloud`, `aws`, `minimal-ci`. */
  readonly flavour: string;
  readonly fidelity: Fidelity;
  /** Where the data came from (package, archive, dataset). */
  readonly source: string;
  /** Whether CONFIG values are known for this kernel. */
  readonly hasConfig: boolean;
  /** Whether the kernel has a BTF `enum bpf_func_id` (per-kernel helper truth). */
  readonly hasHelperEnum: boolean;
  /** Whether function presence is known (BTF FUNC records or DepSurf's function table). */
  readonly hasFuncs: boolean;
  /** sha256 of the input blob the kernel was read from. */
  readonly sha256: string;
}

/** Column names of every table, with their element types. */
export const TABLES = {
  agg: { name: 'u32', kind: 'u8', size: 'i32', kset: 'u32' },
  field: {
    agg: 'u32',
    name: 'u32',
    type: 'u32',
    tags: 'u32',
    off: 'i32',
    bf: 'i8',
    size: 'i32',
    anon: 'u32',
    ref: 'u32',
    kset: 'u32',
  },
  enumv: { enum: 'u32', name: 'u32', value: 'f64', big: 'u32', kset: 'u32' },
  func: { name: 'u32', kset: 'u32', kfunc: 'u32', inlined: 'u32' },
  proto: { func: 'u32', text: 'u32', kset: 'u32' },
  var: { name: 'u32', type: 'u32', kset: 'u32' },
  typedef: { name: 'u32', type: 'u32', kset: 'u32' },
  tp: { event: 'u32', class: 'u32', kset: 'u32' },
  config: { name: 'u32', value: 'u32', kset: 'u32' },
} as const;

export type TableName = keyof typeof TABLES;
