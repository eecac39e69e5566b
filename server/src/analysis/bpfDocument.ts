/**
 * Which C documents are BPF programs (or their headers): other C files in a workspace or a
 * directory are left alone. Read from the lexer's directives and the macro pass's sites, so a
 * `SEC("…")` or an `#include <bpf/…>` in a comment or a string does not count.
 */
import { maskBpfMacros, type BpfMacroSite } from '../parse/bpfMacros';
import { lexC } from '../parse/lexer';
import { isBccSite } from './file';

/** Only the first characters of a huge file are looked at. */
const HEAD = 200_000;
const BPF_INCLUDE = /^#\s*include\s*[<"](?:bpf\/|vmlinux|linux\/bpf\.h|uapi\/linux\/ptrace\.h|bcc\/)/;

/**
 * Whether a document looks like BPF C: named `*.bpf.c`/`*.bpf.h`, includes BPF, libbpf, BCC or
 * vmlinux headers, or has a `SEC()` annotation or a BCC map or probe. `sites` are the document's
 * macro sites when the caller has them.
 */
export function isBpfDocument(uri: string, text: string, sites?: readonly BpfMacroSite[]): boolean {
  if (/\.bpf\.(c|h)$/.test(uri)) return true;
  const head = text.length > HEAD ? text.slice(0, HEAD) : text;
  if (lexC(head).directives.some((d) => BPF_INCLUDE.test(d.text))) return true;
  return (sites ?? maskBpfMacros(head).sites).some((s) => s.kind === 'section' || isBccSite(s));
}
