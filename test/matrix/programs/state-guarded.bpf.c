// SPDX-License-Identifier: GPL-2.0
/* Reads the task state on both sides of the 5.14 rename: the guard keeps each read on the kernels that have it. */
// matrix-expect: loads-everywhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

SEC("kprobe/do_exit")
int BPF_KPROBE(exit_state_guarded, long code)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	long state;

	if (bpf_core_field_exists(task->__state))
		state = BPF_CORE_READ(task, __state);
	else
		state = BPF_CORE_READ((struct task_struct___pre514 *)task, state);
	bpf_printk("exit in state %ld", state);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
