// SPDX-License-Identifier: GPL-2.0
/* Prints to the program's BPF stream with bpf_stream_vprintk, whose name and prototype changed between 6.17 and 7.0. */
// matrix-expect: fails-somewhere
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern int bpf_stream_vprintk(int stream_id, const char *fmt__str, const void *args, u32 len__sz) __ksym;

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_to_stream, struct task_struct *p)
{
	u64 args[1] = { p->pid };

	bpf_stream_vprintk(1, "exit %d\n", args, sizeof(args));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
