/**
 * The initramfs every matrix kernel boots: busybox, bpftool with its libraries, the compiled
 * objects, and an `/init` that loads (and where it can, attaches) each object and prints one
 * machine-readable line per result on the serial console before powering off. Written as a
 * gzip-compressed cpio "newc" archive by this module, so no cpio tool is needed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { GuestFile } from './guest';

/** Every line the guest prints for the host starts with this marker. */
export const MARK = '@@ebpf-matrix';

/** The line the guest puts between the attaching load and the plain reload of an object. */
export const RETRY_LINE = '--- loaded again without autoattach ---';

/** The line the guest adds when `bpftool net attach` fails. */
export const NET_ATTACH_FAILED = '--- net attach failed:';

/** Lines of a load log kept from its start (verifier logs can be huge). */
export const LOG_HEAD = 60;
/** Lines of a load log kept from its end: the verifier's reason, 6.x+ kernels' report after it, and libbpf's errors. */
export const LOG_TAIL = 200;

/** One object to load in the guest. */
export interface GuestObject {
  /** File name inside the guest (`/objs/<id>.o`): letters, digits, `_`, `-`, `.`. */
  readonly id: string;
  readonly path: string;
  /** Programs bpftool attaches to the loopback device after loading (`bpftool net attach TYPE`). */
  readonly netAttach?: readonly { type: string; program: string }[];
}

/** One cpio entry. */
interface Entry {
  readonly name: string;
  readonly mode: number;
  readonly data?: Uint8Array;
  readonly rdev?: [number, number];
}

/** The `/init` script (busybox sh). */
export function initScript(autoattach: boolean): string {
  const attach = autoattach ? ' autoattach' : '';
  return `#!/bin/busybox sh
# Written by groundtruth/src/initramfs.ts: loads every object in /objs and reports each result.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debug /sys/kernel/debug 2>/dev/null
mount -t tracefs trace /sys/kernel/tracing 2>/dev/null
# Kernel messages would interleave with the result lines on the same console.
echo 1 > /proc/sys/kernel/printk
ulimit -l unlimited
M=${MARK}
echo "$M kernel $(uname -r)"
echo "$M btf-sha256 $(sha256sum /sys/kernel/btf/vmlinux 2>/dev/null | cut -d' ' -f1)"
echo "$M bpftool $(bpftool version 2>&1 | tr '\\n' ' ')"
# Functions of vmlinux that exist only as compiler clones (name.isra.0, name.constprop.0, name.part.0):
# no symbol of their own name, so fentry and kprobes cannot attach to them by that name.
awk -v p="$M clone-only" 'NF == 3 && ($2 == "t" || $2 == "T") && $3 !~ /^__pfx_/ {
  n = $3
  if (n ~ /[.](isra|constprop|part|cold|llvm)[.]/ || n ~ /[.](isra|constprop|part|cold|llvm)$/) { b = n; sub(/[.].*$/, "", b); if (!(b in c)) c[b] = n }
  else own[n] = 1
} END {
  k = 0; line = ""
  for (b in c) if (!(b in own)) { line = line " " b "=" c[b]; if (++k % 40 == 0) { print p line; line = "" } }
  if (line != "") print p line
}' /proc/kallsyms
for o in /objs/*.o; do
  n=\${o##*/}
  n=\${n%.o}
  s=$(cut -d' ' -f1 /proc/uptime)
  # bpftool pins what it loads under this directory; when a program cannot be auto-attached it
  # pins the program itself, and that pin (unlike a link's) does not create the directory.
  mkdir -p "/sys/fs/bpf/$n"
  bpftool prog loadall "$o" "/sys/fs/bpf/$n"${attach} > /tmp/out 2>&1
  rc=$?
  rc2=-
  if [ $rc -ne 0 ] && grep -q 'failed to pin' /tmp/out; then
    # Attached through a perf event (kprobes and tracepoints before 5.15), which is no BPF link
    # and cannot be pinned: bpftool gives up there, so the whole object is loaded again, unattached.
    rm -rf "/sys/fs/bpf/$n"
    mkdir -p "/sys/fs/bpf/$n"
    echo "${RETRY_LINE}" >> /tmp/out
    bpftool prog loadall "$o" "/sys/fs/bpf/$n" >> /tmp/out 2>&1
    rc2=$?
  fi
  if [ -f "/objs/$n.attach" ] && { [ $rc -eq 0 ] || [ "$rc2" = 0 ]; }; then
    # Program types libbpf cannot attach without a device (tcx, XDP): bpftool attaches them to lo.
    while read t p; do
      bpftool net attach "$t" pinned "/sys/fs/bpf/$n/$p" dev lo >> /tmp/out 2>&1 || echo "${NET_ATTACH_FAILED} $t $p" >> /tmp/out
      bpftool net detach "$t" dev lo > /dev/null 2>&1
    done < "/objs/$n.attach"
  fi
  e=$(cut -d' ' -f1 /proc/uptime)
  awk -v p="$M log $n" -v h=${LOG_HEAD} -v t=${LOG_TAIL} '{ a[NR] = $0 } END {
    for (i = 1; i <= NR; i++) {
      if (i <= h || i > NR - t) print p " " a[i]
      else if (i == h + 1) print p " ... " (NR - h - t) " lines left out ..."
    }
  }' /tmp/out
  echo "$M result $n $rc $s $e $rc2"
  rm -rf "/sys/fs/bpf/$n"
  if [ -x /bin/loader ]; then
    # Each program alone (the per-program loader): its libbpf lines, capped, then its verdict.
    /bin/loader "$o" 2>&1 | awk -v p="$M pl $n" -v h=${LOG_HEAD} -v t=${LOG_TAIL} '
      $1 == "L" { k = $2; c[k]++; a[k, c[k]] = $0; next }
      $1 == "P" {
        k = $2; m = c[k] + 0
        for (i = 1; i <= m; i++) {
          if (i <= h || i > m - t) print p " " a[k, i]
          else if (i == h + 1) print p " L " k " ... " (m - h - t) " lines left out ..."
        }
        c[k] = 0; print p " " $0; next
      }
      { print p " " $0 }'
  fi
done
echo "$M done"
sync
poweroff -f
`;
}

/** Builds the gzip'd newc archive and writes it to `out`; returns its size in bytes. */
export function buildInitramfs(out: string, tools: readonly GuestFile[], objects: readonly GuestObject[], autoattach: boolean): number {
  const entries: Entry[] = [];
  const dirs = new Set<string>();
  const addDir = (d: string) => {
    const parts = d.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!dirs.has(p)) {
        dirs.add(p);
        entries.push({ name: p, mode: 0o040755 });
      }
    }
  };
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp', 'objs', 'lib/x86_64-linux-gnu', 'lib64', 'etc']) addDir(d);
  // The kernel opens /dev/console for init's stdio before anything is mounted.
  entries.push({ name: 'dev/console', mode: 0o020600, rdev: [5, 1] });
  entries.push({ name: 'dev/null', mode: 0o020666, rdev: [1, 3] });
  for (const f of tools) {
    addDir(f.guestPath.split('/').slice(0, -1).join('/'));
    entries.push({ name: f.guestPath, mode: 0o100755, data: readFileSync(f.hostPath) });
  }
  for (const o of objects) {
    if (!/^[A-Za-z0-9_.-]+$/.test(o.id)) throw new Error(`object id "${o.id}" must be letters, digits, _, - or .`);
    entries.push({ name: `objs/${o.id}.o`, mode: 0o100644, data: readFileSync(o.path) });
    if (o.netAttach?.length) {
      const plan = o.netAttach.map((a) => `${a.type} ${a.program}\n`).join('');
      entries.push({ name: `objs/${o.id}.attach`, mode: 0o100644, data: Buffer.from(plan) });
    }
  }
  entries.push({ name: 'init', mode: 0o100755, data: Buffer.from(initScript(autoattach)) });
  const bytes = gzipSync(cpioNewc(entries), { level: 6 });
  writeFileSync(out, bytes);
  return bytes.length;
}

/** Serialises entries as a cpio "newc" archive (the format the kernel unpacks). */
export function cpioNewc(entries: readonly Entry[]): Buffer {
  const chunks: Buffer[] = [];
  let ino = 1;
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const put = (e: Entry) => {
    const data = e.data ?? new Uint8Array(0);
    const name = Buffer.from(`${e.name}\0`);
    const fields = [
      ino++,
      e.mode,
      0,
      0,
      (e.mode & 0o170000) === 0o040000 ? 2 : 1,
      0,
      data.length,
      0,
      0,
      e.rdev?.[0] ?? 0,
      e.rdev?.[1] ?? 0,
      name.length,
      0,
    ];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'latin1');
    chunks.push(header, name, pad(header.length + name.length), Buffer.from(data), pad(data.length));
  };
  for (const e of entries) put(e);
  put({ name: 'TRAILER!!!', mode: 0 });
  return Buffer.concat(chunks);
}
