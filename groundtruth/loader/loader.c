// SPDX-License-Identifier: MIT
/*
 * The kernel matrix's per-program loader: opens a BPF object with libbpf and, for each of its
 * programs in turn, loads that program alone (autoload off for the others) and attaches it where
 * libbpf can (tcx and XDP programs to the loopback device). One line per program:
 *
 *   P <program> loaded|load-failed|attach-failed|open-failed <errno> <section>
 *
 * and before it the warnings libbpf printed for that program (the verifier log included) as
 *
 *   L <program> <line>
 *
 * A line `V <major>.<minor>` first gives the libbpf version it was built with.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

static const char *current = "-";
/* libbpf warnings printed while attaching: a failure of the kernel's, not a missing auto-attach. */
static int attaching, attach_warnings;

static int print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	static char buf[65536];
	if (level == LIBBPF_DEBUG)
		return 0;
	int n = vsnprintf(buf, sizeof(buf), fmt, args);
	if (n < 0)
		return 0;
	if (attaching)
		attach_warnings++;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		printf("L %s %s\n", current, line);
	}
	return 0;
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* libbpf attaches tcx and XDP programs only to a device it is given: the loopback device here. */
static struct bpf_link *attach(struct bpf_program *p)
{
	const char *sec = bpf_program__section_name(p);
	if (starts(sec, "tcx/") || starts(sec, "tc/ingress") || starts(sec, "tc/egress"))
		return bpf_program__attach_tcx(p, 1, NULL);
	if (starts(sec, "xdp"))
		return bpf_program__attach_xdp(p, 1);
	return bpf_program__attach(p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OBJECT\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print);
	printf("V %u.%u\n", libbpf_major_version(), libbpf_minor_version());
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		printf("P - open-failed %d -\n", errno);
		return 1;
	}
	int count = 0;
	struct bpf_program *p;
	bpf_object__for_each_program(p, obj) count++;
	char **names = calloc(count ? count : 1, sizeof(*names));
	int i = 0;
	bpf_object__for_each_program(p, obj) names[i++] = strdup(bpf_program__name(p));
	bpf_object__close(obj);

	int failed = 0;
	for (i = 0; i < count; i++) {
		current = names[i];
		obj = bpf_object__open_file(argv[1], NULL);
		if (!obj) {
			printf("P %s open-failed %d -\n", names[i], errno);
			failed = 1;
			continue;
		}
		struct bpf_program *mine = NULL;
		bpf_object__for_each_program(p, obj) {
			int me = strcmp(bpf_program__name(p), names[i]) == 0;
			bpf_program__set_autoload(p, me);
			if (me)
				mine = p;
		}
		const char *sec = mine ? bpf_program__section_name(mine) : "-";
		int err = bpf_object__load(obj);
		if (err) {
			printf("P %s load-failed %d %s\n", names[i], -err, sec);
			failed = 1;
		} else {
			attaching = 1;
			attach_warnings = 0;
			struct bpf_link *link = attach(mine);
			err = link ? 0 : errno;
			attaching = 0;
			/* EOPNOTSUPP without a warning: libbpf has no automatic attachment for the type (a
			   syscall program, a netfilter hook, a SEC() without a target); it loaded, and that is
			   all it can do. With one, the kernel refused (kprobe.multi without fprobe support). */
			if (!link && (err != EOPNOTSUPP || attach_warnings > 0)) {
				printf("P %s attach-failed %d %s\n", names[i], err, sec);
				failed = 1;
			} else {
				printf("P %s loaded %d %s\n", names[i], err, sec);
			}
			bpf_link__destroy(link);
		}
		bpf_object__close(obj);
		current = "-";
	}
	return failed;
}
