/* BCC-style open tracer: compiled by BCC on each host against that host's headers. */
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

struct data_t {
	u32 pid;
	u32 ppid;
	char comm[TASK_COMM_LEN];
	char fname[256];
};

BPF_PERF_OUTPUT(events);

int kprobe__do_sys_openat2(struct pt_regs *ctx, int dfd, const char __user *filename)
{
	struct data_t data = {};
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	data.pid = bpf_get_current_pid_tgid() >> 32;
	/* BCC rewrites this dereference into probe reads against the host's headers. */
	data.ppid = task->real_parent->tgid;
	bpf_get_current_comm(&data.comm, sizeof(data.comm));
	bpf_probe_read_user_str(&data.fname, sizeof(data.fname), filename);
	events.perf_submit(ctx, &data, sizeof(data));
	return 0;
}
