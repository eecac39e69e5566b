// SPDX-License-Identifier: GPL-2.0
/* Reads struct mnt_idmap (6.3+; mounts carried a user namespace before) with no type guard. */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

SEC("kprobe/do_exit")
int BPF_KPROBE(idmap_refs, long code)
{
	struct mnt_idmap *idmap = (struct mnt_idmap *)PT_REGS_PARM2(ctx);
	unsigned int refs = BPF_CORE_READ(idmap, count.refs.counter);

	bpf_printk("idmap references %u", refs);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
