/**
 * A compiled BPF object (`clang -target bpf -g`), read with the project's own ELF and BTF readers:
 * its program sections, license, `.BTF` and `.BTF.ext` (CO-RE relocations and source lines).
 */
import { ElfFile, SHF_EXECINSTR } from '../elf';
import { type BtfExt, parseBtfExt } from './ext';
import { type Btf, parseBtf } from './reader';

/** What the analysis reads from an object. */
export interface BpfObject {
  /** Program sections (executable), by name, with their instructions' bytes. */
  readonly programs: readonly { readonly section: string; readonly size: number; readonly code: Uint8Array }[];
  /** The `license` section's string, if any. */
  readonly license?: string;
  readonly btf: Btf;
  /** Absent when the object was built without `-g` (no `.BTF.ext`). */
  readonly ext?: BtfExt;
}

/** A BPF object that cannot be read, with why. */
export class BpfObjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BpfObjectError';
  }
}

/** Reads an object's bytes; throws {@link BpfObjectError} (or the readers' own errors) when it is not a BPF object with BTF. */
export function readBpfObject(bytes: Uint8Array, file = '<object>'): BpfObject {
  const elf = new ElfFile(bytes);
  const btfSec = elf.section('.BTF');
  if (!btfSec) throw new BpfObjectError(`${file}: no .BTF section (compile with -g)`);
  const btf = parseBtf(elf.data(btfSec), file);
  const extSec = elf.section('.BTF.ext');
  const ext = extSec ? parseBtfExt(elf.data(extSec), btf) : undefined;
  const programs = elf.sections
    .filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.size > 0)
    .map((s) => ({ section: s.name, size: s.size, code: elf.data(s) }));
  const lic = elf.section('license');
  const license = lic ? new TextDecoder().decode(elf.data(lic)).replace(/\0[\s\S]*$/, '') : undefined;
  return { programs, btf, ...(ext ? { ext } : {}), ...(license !== undefined ? { license } : {}) };
}
