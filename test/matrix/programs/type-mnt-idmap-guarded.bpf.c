// SPDX-License-Identifier: GPL-2.0
/* Reads struct mnt_idmap only on kernels that have the type (bpf_core_type_exists). */
// matrix-expect: loads-everywhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

SEC("kprobe/do_exit")
int BPF_KPROBE(idmap_refs_guarded, long code)
{
	struct mnt_idmap *idmap = (struct mnt_idmap *)PT_REGS_PARM2(ctx);
	unsigned int refs = 0;

	if (bpf_core_type_exists(struct mnt_idmap))
		refs = BPF_CORE_READ(idmap, count.refs.counter);
	bpf_printk("idmap references %u", refs);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
