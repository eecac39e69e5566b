// SPDX-License-Identifier: GPL-2.0
/* Reads inode.i_ctime_sec (6.11+; i_ctime before 6.6, __i_ctime in 6.6-6.10) with no guard. */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

SEC("kprobe/do_exit")
int BPF_KPROBE(exe_ctime, long code)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	s64 sec = BPF_CORE_READ(task, mm, exe_file, f_inode, i_ctime_sec);

	bpf_printk("exe ctime %lld", sec);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
