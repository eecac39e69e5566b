// SPDX-License-Identifier: GPL-2.0
/* Reads the task state on kernels before and after the 5.14 rename, with a ___flavor struct. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* Declared without preserve_access_index: direct reads through it use the offsets of this copy. */
struct task_struct___o {
	long state;
};

SEC("fentry/do_exit")
int BPF_PROG(exit_state, long code)
{
	struct task_struct *task = bpf_get_current_task_btf();
	long state;

	if (bpf_core_field_exists(task->__state)) {
		state = task->__state;
	} else {
		struct task_struct___o *old = (void *)task;
		/* The classic bug: a direct read through the copy is not relocated (offset 0 here). */
		state = old->state;
	}
	bpf_printk("exit in state %ld", state);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
