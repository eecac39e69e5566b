// SPDX-License-Identifier: GPL-2.0
/* Process tracer: reports exiting processes with their parent and start time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct event {
	u32 pid;
	u32 ppid;
	u64 start_ns;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("kprobe/do_exit")
int BPF_KPROBE(trace_exit, long code)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	/* A kprobe may not dereference kernel pointers: these two loads are rejected. */
	e->pid = task->tgid;
	e->ppid = task->real_parent->tgid;
	/* Correct CO-RE read: relocated and done with a probe read. */
	e->start_ns = BPF_CORE_READ(task, start_time);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	/* BTF-typed arguments may be read directly in tp_btf programs. */
	bpf_printk("fork %d -> %d", parent->pid, child->pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
