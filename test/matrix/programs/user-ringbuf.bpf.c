// SPDX-License-Identifier: GPL-2.0
/* Drains commands from user space through a user ring buffer (BPF_MAP_TYPE_USER_RINGBUF, 6.1+). */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} commands SEC(".maps");

static long handle(struct bpf_dynptr *dynptr, void *ctx)
{
	(*(u64 *)ctx)++;
	return 0;
}

SEC("kprobe/do_exit")
int BPF_KPROBE(drain_commands, long code)
{
	u64 n = 0;

	bpf_user_ringbuf_drain(&commands, handle, &n, 0);
	bpf_printk("%llu commands", n);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
