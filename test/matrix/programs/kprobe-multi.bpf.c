// SPDX-License-Identifier: GPL-2.0
/* A multi-kprobe (BPF_TRACE_KPROBE_MULTI, 5.18+) on the exit path. */
// matrix-expect: any
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("kprobe.multi/do_exit")
int BPF_KPROBE(exit_multi)
{
	bpf_printk("exit %d", (int)(bpf_get_current_pid_tgid() >> 32));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
