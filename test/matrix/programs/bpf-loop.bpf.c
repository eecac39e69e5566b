// SPDX-License-Identifier: GPL-2.0
/* Iterates with the bpf_loop helper (5.17+). */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

static long add_index(u32 index, void *ctx)
{
	*(u64 *)ctx += index;
	return 0;
}

SEC("kprobe/do_exit")
int BPF_KPROBE(loop_sum, long code)
{
	u64 sum = 0;

	bpf_loop(10, add_index, &sum, 0);
	bpf_printk("sum %llu", sum);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
