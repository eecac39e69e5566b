/**
 * Which C documents are BPF programs (or their headers): other C files in a workspace or a
 * directory are left alone. Read from the lexer's directives and the macro pass's sites, so a
 * `SEC("…")` or an `#include <bpf/…>` in a comment or a string does not count.
 */
import { maskBpfMacros, type BpfMacroSite } from '../parse/bpfMacros';
import type { SectionSite } from '../parse/sites';
import { lexC } from '../parse/lexer';
import { isBccSite } from './file';
import { importsBcc } from '../parse/python';

/** Only the first characters of a huge file are looked at. */
const HEAD = 200_000;
/** Headers only BPF programs include (libbpf's BPF-side headers, vmlinux.h, BCC's). */
const BPF_SIDE =
  /^#\s*include\s*[<"](?:bpf\/bpf_(?:helpers|tracing|core_read|endian)\.h|(?:[^>"]*\/)?vmlinux[^/>"]*\.h|uapi\/linux\/ptrace\.h|bcc\/)/;
/** Headers only user-space loaders include (libbpf's loader API, generated skeletons). */
const USER_SPACE = /^#\s*include\s*[<"](?:bpf\/libbpf\.h|bpf\/bpf\.h|[^>"]*\.skel\.h)[>"]/;

/** Whether a document is BPF C by its name alone (`*.bpf.c`, `*.bpf.h`), read from nothing else. */
export function isBpfPath(uri: string): boolean {
  return /\.bpf\.(c|h)$/.test(uri);
}

/**
 * BPF program and object sections, as libbpf and cilium/ebpf name them: `SEC()` says BPF whatever
 * it names; a section attribute written out (`__attribute__((section(".text.hot")))`) is also
 * plain user-space C, so it says BPF only with one of these names (or their `.s`, `.multi`, `/target`
 * forms).
 */
const BPF_SECTION =
  /^\??(kprobe|kretprobe|ksyscall|kretsyscall|uprobe|uretprobe|usdt|tracepoint|tp|raw_tracepoint|raw_tp|tp_btf|fentry|fexit|fmod_ret|freplace|lsm|lsm_cgroup|iter|xdp|xdp_devmap|xdp_cpumap|tc|tcx|tc_packet_hook|netkit|classifier|action|socket|sk_skb|sk_msg|sk_lookup|sk_reuseport|sockops|sock_ops|flow_dissector|cgroup|cgroup_skb|cgroup_sock|cgroup_sock_addr|cgroup_sysctl|cgroup_sockopt|cgroup_device|lwt_in|lwt_out|lwt_xmit|lwt_seg6local|perf_event|struct_ops|syscall|netfilter|seccomp|license|version|maps|\.maps)([/.].*)?$/;

function bpfSection(s: SectionSite): boolean {
  return s.name === 'SEC' || (s.section !== null && BPF_SECTION.test(s.section));
}

/**
 * Whether a document is BPF C: named `*.bpf.c`/`*.bpf.h`, or with a `SEC()` annotation or a BCC
 * map or probe, or including BPF-side headers (libbpf's `bpf_helpers.h` and friends, `vmlinux.h`,
 * BCC's) and no user-space loader header (`bpf/libbpf.h`, `bpf/bpf.h`, a `.skel.h`): a loader
 * that includes both runs in user space, where globals and loops are plain C. `sites` are the
 * document's macro sites when the caller has them.
 */
export function isBpfDocument(uri: string, text: string, sites?: readonly BpfMacroSite[]): boolean {
  if (isBpfPath(uri)) return true;
  // A BCC tool in Python holds its BPF C in strings.
  if (/\.py$/i.test(uri)) return importsBcc(text);
  const head = text.length > HEAD ? text.slice(0, HEAD) : text;
  if ((sites ?? maskBpfMacros(head).sites).some((s) => (s.kind === 'section' && bpfSection(s)) || isBccSite(s))) return true;
  const includes = lexC(head).directives.map((d) => d.text);
  return includes.some((d) => BPF_SIDE.test(d)) && !includes.some((d) => USER_SPACE.test(d));
}
