// SPDX-License-Identifier: GPL-2.0
/* A netfilter hook program (BPF_PROG_TYPE_NETFILTER, 6.4+) that accepts every packet. */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define NF_ACCEPT 1

SEC("netfilter")
int accept_all(struct bpf_nf_ctx *ctx)
{
	return NF_ACCEPT;
}

char LICENSE[] SEC("license") = "GPL";
