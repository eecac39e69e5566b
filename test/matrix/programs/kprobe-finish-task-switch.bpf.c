// SPDX-License-Identifier: GPL-2.0
/* A kprobe on finish_task_switch, which some builds only have as a compiler clone (finish_task_switch.isra.0). */
// matrix-expect: any
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

SEC("kprobe/finish_task_switch")
int BPF_KPROBE(switch_done, struct task_struct *prev)
{
	bpf_printk("switched from %d", (int)BPF_CORE_READ(prev, pid));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
