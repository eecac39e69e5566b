// SPDX-License-Identifier: GPL-2.0
/* A tc classifier for the tcx ingress hook (BPF_TCX_INGRESS attach type, 6.6+). */
// matrix-expect: any
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TCX_NEXT -1

SEC("tcx/ingress")
int count_ingress(struct __sk_buff *skb)
{
	if (skb->len > 1500)
		bpf_printk("jumbo %u", skb->len);
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "GPL";
