// SPDX-License-Identifier: GPL-2.0
/* Reads an inode's ctime seconds on every layout: i_ctime (before 6.6), __i_ctime (6.6-6.10), i_ctime_sec (6.11+). */
// matrix-expect: loads-everywhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct inode___pre66 {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___v66 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

SEC("kprobe/do_exit")
int BPF_KPROBE(exe_ctime_guarded, long code)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
	s64 sec;

	if (bpf_core_field_exists(inode->i_ctime_sec))
		sec = BPF_CORE_READ(inode, i_ctime_sec);
	else if (bpf_core_field_exists(((struct inode___v66 *)inode)->__i_ctime))
		sec = BPF_CORE_READ((struct inode___v66 *)inode, __i_ctime.tv_sec);
	else
		sec = BPF_CORE_READ((struct inode___pre66 *)inode, i_ctime.tv_sec);
	bpf_printk("exe ctime %lld", sec);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
