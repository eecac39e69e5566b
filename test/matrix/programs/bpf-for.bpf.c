// SPDX-License-Identifier: GPL-2.0
/* Counts with an open-coded numeric iterator (bpf_for, the bpf_iter_num kfuncs of 6.4+). */
// matrix-expect: fails-somewhere
#define BPF_NO_KFUNC_PROTOTYPES
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

#ifndef bpf_for
/* libbpf 1.2 defines bpf_for in bpf_helpers.h; this is the same loop written out. */
#define bpf_for(i, start, end)                                                          \
	for (struct bpf_iter_num ___it __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))), \
	     *___p __attribute__((unused)) = (bpf_iter_num_new(&___it, (start), (end)),        \
					      (void)bpf_iter_num_destroy, (void *)0);          \
	     ({ int *___t = bpf_iter_num_next(&___it); (___t && ((i) = *___t, 1)); });)
#endif

SEC("kprobe/do_exit")
int BPF_KPROBE(sum_to_ten, long code)
{
	int i, sum = 0;

	bpf_for(i, 0, 10)
		sum += i;
	bpf_printk("sum %d", sum);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
