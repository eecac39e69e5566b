// SPDX-License-Identifier: GPL-2.0
/* A BPF LSM program on file_open (needs CONFIG_BPF_LSM, and "bpf" among the active LSMs to run). */
// matrix-expect: any
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("lsm/file_open")
int BPF_PROG(allow_open, struct file *file)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
