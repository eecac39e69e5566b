// SPDX-License-Identifier: GPL-2.0
/* Takes a reference on the new task with the bpf_task_acquire kfunc (6.2+). */
// matrix-expect: fails-somewhere
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

SEC("tp_btf/task_newtask")
int BPF_PROG(on_newtask, struct task_struct *task, u64 clone_flags)
{
	struct task_struct *ref = bpf_task_acquire(task);

	if (!ref)
		return 0;
	bpf_printk("new task %d", ref->pid);
	bpf_task_release(ref);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
