// SPDX-License-Identifier: GPL-2.0
/* Measures the exiting task's name with the bpf_strlen string kfunc (6.17+). */
// matrix-expect: fails-somewhere
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern int bpf_strlen(const char *s__ign) __ksym;

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_comm_len, struct task_struct *p)
{
	bpf_printk("comm length %d", bpf_strlen(p->comm));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
