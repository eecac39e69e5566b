/** Which C files are BPF programs: user-space loaders beside them are not analysed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBpfDocument } from '../../server/src/analysis/bpfDocument';

test('a libbpf loader (libbpf.h, a skeleton) is user space; the program beside it is BPF', () => {
  const loader = `#include <stdio.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "bootstrap.skel.h"
static volatile bool exiting;
int main(void) { for (int i = 0; i < n; i++) {} return 0; }
`;
  assert.equal(isBpfDocument('file:///p/bootstrap.c', loader), false);
  // Near miss: a program that includes BPF-side headers and has SEC() is BPF even if named `.c`.
  const prog = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("tp/sched/sched_process_exec")
int handle_exec(void *ctx) { return 0; }
`;
  assert.equal(isBpfDocument('file:///p/prog.c', prog), true);
});

test('BPF-side headers make a file BPF; a SEC() or a BCC map does even next to user-space headers', () => {
  assert.equal(
    isBpfDocument('file:///p/helpers.h', '#include <bpf/bpf_helpers.h>\nstatic __always_inline int f(void) { return 0; }\n'),
    true,
  );
  assert.equal(isBpfDocument('file:///p/gadget.h', '#include <vmlinux.h>\n'), true);
  assert.equal(
    isBpfDocument('file:///p/x.c', '#include <bpf/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int f(void *c) { return 2; }\n'),
    true,
  );
  assert.equal(isBpfDocument('file:///p/bcc.c', 'BPF_HASH(start, u32, u64);\nint f(void *ctx) { return 0; }\n'), true);
  assert.equal(isBpfDocument('file:///p/any.bpf.c', ''), true);
  // Near misses: plain C, a SEC or an include mentioned only in a comment or a string.
  assert.equal(isBpfDocument('file:///p/util.c', '#include <stdio.h>\nint main(void) { return 0; }\n'), false);
  assert.equal(
    isBpfDocument('file:///p/doc.c', '// SEC("kprobe/x") and #include <bpf/bpf_helpers.h>\nconst char *s = "SEC(\\"xdp\\")";\n'),
    false,
  );
});

test('a section attribute written out says BPF only with a BPF section name; user-space C has its own sections', () => {
  // Tetragon writes SEC out: `__attribute__((section("kprobe/x"), used))`, and its license so.
  assert.equal(
    isBpfDocument('file:///p/tg.c', '__attribute__((section(("kprobe/wake_up_new_task")), used)) int f(void *ctx) { return 0; }\n'),
    true,
  );
  assert.equal(isBpfDocument('file:///p/lic.c', 'char _license[] __attribute__((section("license"), used)) = "GPL";\n'), true);
  // Near misses: user-space C placing functions and data in sections of its own.
  assert.equal(
    isBpfDocument(
      'file:///p/tool.c',
      '#include <stdio.h>\nint counter;\n__attribute__((section(".text.hot"))) int hot(int x) { return x; }\n',
    ),
    false,
  );
  assert.equal(isBpfDocument('file:///p/init.c', 'static void (*init)(void) __attribute__((section(".init_array"), used)) = 0;\n'), false);
});
