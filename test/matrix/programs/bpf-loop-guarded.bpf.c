// SPDX-License-Identifier: GPL-2.0
/*
 * Calls bpf_loop only where enum bpf_func_id has BPF_FUNC_loop, with an unrolled fallback. The
 * guard removes the call, but not the callback's address (a BPF_PSEUDO_FUNC load, 5.13+), which
 * kernels before 5.13 reject before any dead code is removed: 5.10 still refuses the program.
 */
// matrix-expect: any
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

static long add_index(u32 index, void *ctx)
{
	*(u64 *)ctx += index;
	return 0;
}

SEC("kprobe/do_exit")
int BPF_KPROBE(loop_sum_guarded, long code)
{
	u64 sum = 0;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_loop)) {
		bpf_loop(10, add_index, &sum, 0);
	} else {
#pragma unroll
		for (int i = 0; i < 10; i++)
			sum += i;
	}
	bpf_printk("sum %llu", sum);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
