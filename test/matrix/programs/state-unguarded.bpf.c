// SPDX-License-Identifier: GPL-2.0
/* Reads task_struct.__state (named `state` before 5.14) with no existence guard. */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

SEC("kprobe/do_exit")
int BPF_KPROBE(exit_state, long code)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned int state = BPF_CORE_READ(task, __state);

	bpf_printk("exit in state %u", state);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
