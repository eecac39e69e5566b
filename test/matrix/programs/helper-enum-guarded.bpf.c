// SPDX-License-Identifier: GPL-2.0
/* Uses bpf_get_current_task_btf (5.11+) only where enum bpf_func_id has it, else bpf_get_current_task. */
// matrix-expect: loads-everywhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

SEC("kprobe/do_exit")
int BPF_KPROBE(exit_pid_guarded, long code)
{
	struct task_struct *task;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		task = bpf_get_current_task_btf();
	else
		task = (struct task_struct *)bpf_get_current_task();
	bpf_printk("exit %d", BPF_CORE_READ(task, pid));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
