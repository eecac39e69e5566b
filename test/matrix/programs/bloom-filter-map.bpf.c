// SPDX-License-Identifier: GPL-2.0
/* Remembers seen PIDs in a bloom filter map (5.16+). */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__type(value, u32);
	__uint(max_entries, 1024);
	__uint(map_extra, 3);
} seen SEC(".maps");

SEC("kprobe/do_exit")
int BPF_KPROBE(remember_pid, long code)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (bpf_map_peek_elem(&seen, &pid) == 0)
		return 0;
	bpf_map_push_elem(&seen, &pid, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
