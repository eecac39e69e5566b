// SPDX-License-Identifier: GPL-2.0
/* Disables interrupts around a critical section with bpf_local_irq_save/restore (6.14+). */
// matrix-expect: fails-somewhere
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern void bpf_local_irq_save(unsigned long *flags__irq_flag) __ksym;
extern void bpf_local_irq_restore(unsigned long *flags__irq_flag) __ksym;

u64 counter;

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_irq_off, struct task_struct *p)
{
	unsigned long flags;

	bpf_local_irq_save(&flags);
	counter++;
	bpf_local_irq_restore(&flags);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
