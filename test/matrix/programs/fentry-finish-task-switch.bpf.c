// SPDX-License-Identifier: GPL-2.0
/* fentry on finish_task_switch: needs the function in the kernel's BTF under that exact name. */
// matrix-expect: any
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("fentry/finish_task_switch")
int BPF_PROG(switch_done_fentry, struct task_struct *prev)
{
	bpf_printk("switched from %d", prev->pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
