// SPDX-License-Identifier: GPL-2.0
/* Counts forks per cgroup in cgroup local storage (BPF_MAP_TYPE_CGRP_STORAGE and bpf_cgrp_storage_get, 6.2+). */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} forks SEC(".maps");

SEC("tp_btf/sched_process_fork")
int BPF_PROG(count_fork, struct task_struct *parent, struct task_struct *child)
{
	u64 *n = bpf_cgrp_storage_get(&forks, parent->cgroups->dfl_cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
