/**
 * Program context: what a function's `SEC()` makes it, and whether kernel pointers may be
 * dereferenced directly there (BTF-typed program arguments) or need probe reads.
 */
import { callGraph } from './calls';
import type { Facts } from '../../../kernel-db/src/query/facts';
import type { FileModel, FunctionInfo } from './file';

/**
 * How the verifier treats kernel pointers in a program:
 * `btf`: arguments are BTF-typed pointers that may be read directly (fentry, fexit, fmod_ret,
 * tp_btf, lsm, iter, struct_ops); `probe-read`: kernel memory must go through probe reads
 * (kprobe, uprobe, tracepoint, raw_tp, perf_event, networking programs without packet data);
 * `packet`: as `probe-read`, in a program whose context hands out packet pointers (XDP, tc,
 * sk_skb, …): the program reads packet memory directly, and a helper function's pointer
 * arguments may point into the packet; `unknown`: cannot say.
 */
export type DerefPolicy = 'btf' | 'probe-read' | 'packet' | 'unknown';

/** A function's program context. */
export interface ProgramContext {
  readonly policy: DerefPolicy;
  /** `kprobe`, `fentry`, … for messages. */
  readonly label: string;
  readonly sec?: string;
  readonly progType?: string;
  /**
   * Whether the program is sleepable: its `SEC()` is one libbpf loads with `BPF_F_SLEEPABLE`
   * (`fentry.s`, `lsm.s`, `uprobe.s`, `syscall`, …: the section facts' `sleepable` flag).
   * Undefined where the section is unknown.
   */
  readonly sleepable?: boolean;
}

const BTF_PROG_TYPES = new Set(['BPF_PROG_TYPE_TRACING', 'BPF_PROG_TYPE_LSM', 'BPF_PROG_TYPE_STRUCT_OPS', 'BPF_PROG_TYPE_EXT']);
/**
 * Program types whose context has members the verifier types as packet pointers
 * (`PTR_TO_PACKET`): the types `may_access_direct_pkt_data()` admits (kernel/bpf/verifier.c), and
 * sock_ops, whose `skb_data` is one (net/core/filter.c, `sock_ops_is_valid_access`).
 */
const PACKET_PROG_TYPES = new Set([
  'BPF_PROG_TYPE_XDP',
  'BPF_PROG_TYPE_SCHED_CLS',
  'BPF_PROG_TYPE_SCHED_ACT',
  'BPF_PROG_TYPE_CGROUP_SKB',
  'BPF_PROG_TYPE_SOCK_OPS',
  'BPF_PROG_TYPE_SK_SKB',
  'BPF_PROG_TYPE_SK_MSG',
  'BPF_PROG_TYPE_FLOW_DISSECTOR',
  'BPF_PROG_TYPE_LWT_IN',
  'BPF_PROG_TYPE_LWT_OUT',
  'BPF_PROG_TYPE_LWT_XMIT',
  'BPF_PROG_TYPE_LWT_SEG6LOCAL',
  'BPF_PROG_TYPE_SK_REUSEPORT',
  'BPF_PROG_TYPE_CGROUP_SOCKOPT',
]);
const PROBE_READ_PROG_TYPES = new Set([
  'BPF_PROG_TYPE_KPROBE',
  'BPF_PROG_TYPE_TRACEPOINT',
  'BPF_PROG_TYPE_RAW_TRACEPOINT',
  'BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE',
  'BPF_PROG_TYPE_PERF_EVENT',
  'BPF_PROG_TYPE_SOCKET_FILTER',
  'BPF_PROG_TYPE_CGROUP_SOCK',
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR',
  'BPF_PROG_TYPE_SK_LOOKUP',
  'BPF_PROG_TYPE_CGROUP_SYSCTL',
  'BPF_PROG_TYPE_CGROUP_DEVICE',
  'BPF_PROG_TYPE_NETFILTER',
]);

/** The context of a function that has a `SEC()`. */
export function secContext(sec: string, facts: Facts): ProgramContext {
  const m = facts.section(sec);
  const label = sec.split('/')[0];
  if (!m || !m.fact.prog_type) return { policy: 'unknown', label, sec };
  const pt = m.fact.prog_type;
  const policy: DerefPolicy = BTF_PROG_TYPES.has(pt)
    ? 'btf'
    : PACKET_PROG_TYPES.has(pt)
      ? 'packet'
      : PROBE_READ_PROG_TYPES.has(pt)
        ? 'probe-read'
        : 'unknown';
  return { policy, label: m.fact.prefix.replace(/[+.]$/, ''), sec, progType: pt, sleepable: !!m.fact.flags?.includes('sleepable') };
}

/**
 * Contexts of every function in the file. A function without `SEC()` takes the context of its
 * callers when all of them agree (a static helper called only from kprobes is kprobe code, and
 * may call only what kprobes may); otherwise it is `unknown` and rules that depend on the policy
 * or the program type stay silent there.
 */
export function functionContexts(model: FileModel, facts: Facts): Map<FunctionInfo, ProgramContext> {
  const out = new Map<FunctionInfo, ProgramContext>();
  for (const f of model.functions) if (f.sec) out.set(f, secContext(f.sec, facts));
  // Propagate from programs to the functions they call, a few levels deep.
  const graph = callGraph(model);
  for (let round = 0; round < 4; round++) {
    for (const f of model.functions) {
      if (f.sec) continue;
      const cs = [...graph.callersOf(f)].map((c) => out.get(c));
      if (cs.length === 0 || cs.some((c) => !c)) continue;
      const policies = new Set(cs.map((c) => c!.policy));
      // Callers of one program type make it that type's code: what it may call is that type's.
      const types = new Set(cs.map((c) => c!.progType));
      const progType = types.size === 1 ? cs[0]!.progType : undefined;
      out.set(
        f,
        policies.size === 1
          ? { policy: cs[0]!.policy, label: cs[0]!.label, ...(progType ? { progType } : {}) }
          : { policy: 'unknown', label: 'helper function' },
      );
    }
  }
  for (const f of model.functions) if (!out.has(f)) out.set(f, { policy: 'unknown', label: 'function' });
  return out;
}
