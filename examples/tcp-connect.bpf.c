// SPDX-License-Identifier: GPL-2.0
/* TCP connection tracer built without CO-RE relocations: every offset is baked in at compile time. */
#define BPF_NO_PRESERVE_ACCESS_INDEX
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct conn {
	u32 pid;
	u32 daddr;
	u32 srtt_us;
	u16 dport;
	u16 family;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} conns SEC(".maps");

SEC("kprobe/tcp_rcv_established")
int BPF_KPROBE(trace_established, struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct conn c = {};

	c.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_probe_read_kernel(&c.daddr, sizeof(c.daddr), &sk->__sk_common.skc_daddr);
	bpf_probe_read_kernel(&c.dport, sizeof(c.dport), &sk->__sk_common.skc_dport);
	bpf_probe_read_kernel(&c.family, sizeof(c.family), &sk->__sk_common.skc_family);
	/* tcp_sock grows and shrinks with every release: this offset is right on few kernels. */
	bpf_probe_read_kernel(&c.srtt_us, sizeof(c.srtt_us), &tp->srtt_us);
	bpf_perf_event_output(ctx, &conns, BPF_F_CURRENT_CPU, &c, sizeof(c));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
