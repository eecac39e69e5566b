// SPDX-License-Identifier: GPL-2.0
/* Uses bpf_task_acquire only where the kernel has it: a weak kfunc tested with bpf_ksym_exists. */
// matrix-expect: loads-everywhere
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef bpf_ksym_exists
/* libbpf 1.2 defines this in bpf_helpers.h; older headers lack it. */
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __weak __ksym;
extern void bpf_task_release(struct task_struct *p) __weak __ksym;

SEC("tp_btf/task_newtask")
int BPF_PROG(on_newtask_guarded, struct task_struct *task, u64 clone_flags)
{
	struct task_struct *ref;

	if (!bpf_ksym_exists(bpf_task_acquire)) {
		bpf_printk("new task %d", task->pid);
		return 0;
	}
	ref = bpf_task_acquire(task);
	if (!ref)
		return 0;
	bpf_printk("new task %d", ref->pid);
	bpf_task_release(ref);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
