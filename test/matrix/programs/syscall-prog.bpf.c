// SPDX-License-Identifier: GPL-2.0
/* A syscall program (BPF_PROG_TYPE_SYSCALL, 5.14+), run from user space with BPF_PROG_RUN. */
// matrix-expect: fails-somewhere
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct args {
	int value;
};

SEC("syscall")
int double_it(struct args *ctx)
{
	ctx->value *= 2;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
