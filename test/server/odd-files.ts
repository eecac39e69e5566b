/** Odd files for robustness tests and the bench: a vmlinux.h-like header and object-file-like bytes, deterministic. */

/** A vmlinux.h-like header of at least `bytes` bytes: struct declarations in 78-character lines. */
export function fakeVmlinuxH(bytes: number): string {
  const out = ['#ifndef __VMLINUX_H__', '#define __VMLINUX_H__', ''];
  let size = 0;
  for (let s = 0; size < bytes; s++) {
    const lines = [`struct kernel_type_${String(s).padStart(6, '0')} {`];
    for (let f = 0; f < 16; f++) lines.push(`\tunsigned long member_${String(f).padStart(2, '0')}; /* ${'.'.repeat(50)} */`);
    lines.push('};', '');
    size += lines.reduce((a, l) => a + l.length + 1, 0);
    out.push(...lines);
  }
  out.push('#endif /* __VMLINUX_H__ */', '');
  return out.join('\n');
}

/** `size` bytes that look like an object file (a NUL every 7 bytes among pseudo-random ones), as Latin-1 text. */
export function binaryText(size: number, seed = 4242): string {
  const b = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = i % 7 === 0 ? 0 : x >>> 24;
  }
  return b.toString('latin1');
}
