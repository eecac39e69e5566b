// SPDX-License-Identifier: GPL-2.0
/* Uses bpf_get_current_task_btf (5.11+) only where LINUX_KERNEL_VERSION, which libbpf fills in, says 5.11 or later. */
// matrix-expect: loads-everywhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

extern int LINUX_KERNEL_VERSION __kconfig;

SEC("kprobe/do_exit")
int BPF_KPROBE(exit_pid_versioned, long code)
{
	struct task_struct *task;

	if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 11, 0))
		task = bpf_get_current_task_btf();
	else
		task = (struct task_struct *)bpf_get_current_task();
	bpf_printk("exit %d", BPF_CORE_READ(task, pid));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
