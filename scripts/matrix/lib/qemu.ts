/**
 * Boots one kernel with the matrix initramfs under QEMU (TCG: no KVM needed) and turns its
 * serial output into per-object verdicts: loaded, attach-failed or load-failed, each failure with
 * the libbpf and verifier lines that explain it.
 */
import { spawn } from 'node:child_process';
import { MARK, NET_ATTACH_FAILED, RETRY_LINE } from './initramfs';

/** What the kernel did with one object. */
export type KernelVerdict = 'loaded' | 'attach-failed' | 'load-failed' | 'no-result';

/** One object's result on one kernel. */
export interface ObjectResult {
  readonly verdict: KernelVerdict;
  /** bpftool's exit status (absent when the guest never reported the object). */
  readonly status?: number;
  /** Guest time the load took, in seconds. */
  readonly seconds?: number;
  /** The program libbpf names as failing, when it names one. */
  readonly program?: string;
  /** The lines that explain a failure (libbpf, verifier, bpftool); empty when it loaded cleanly. */
  readonly explain: string[];
  /** Every line the load printed (capped in the guest). */
  readonly log: string[];
}

/** One boot's outcome. */
export interface BootResult {
  /** `uname -r` the guest reported. */
  readonly release?: string;
  /** sha256 of the guest's /sys/kernel/btf/vmlinux. */
  readonly btfSha256?: string;
  readonly bpftool?: string;
  /** The guest printed its closing line (every object was tried). */
  readonly complete: boolean;
  readonly objects: Record<string, ObjectResult>;
  /** Wall time of the whole boot, load and power-off, in milliseconds. */
  readonly ms: number;
  /** The last serial lines, for diagnosing a boot that never reported. */
  readonly tail: string[];
  readonly timedOut: boolean;
}

/** The QEMU command line for a kernel and initramfs. */
export function qemuArgs(vmlinuz: string, initrd: string, memoryMb = 512): string[] {
  return [
    '-accel', 'tcg', '-cpu', 'max', '-m', String(memoryMb), '-nographic', '-no-reboot',
    '-kernel', vmlinuz, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet',
  ];
}

/** Boots under `timeout` seconds (QEMU is killed after that); resolves with the parsed output. */
export function boot(qemu: string, vmlinuz: string, initrd: string, timeoutS: number, objectIds: readonly string[]): Promise<BootResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('timeout', ['-k', '5', String(timeoutS), qemu, ...qemuArgs(vmlinuz, initrd)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      const text = Buffer.concat(chunks).toString('latin1');
      const parsed = parseSerial(text, objectIds);
      resolve({ ...parsed, ms: performance.now() - t0, timedOut: code === 124 || code === 137 });
    });
  });
}

/** Parses the guest's serial output (marker lines; anything else is console noise). */
export function parseSerial(text: string, objectIds: readonly string[]): Omit<BootResult, 'ms' | 'timedOut'> {
  const lines = text.split(/\r?\n/).map((l) => l.replace(/\r/g, ''));
  const logs = new Map<string, string[]>();
  const results = new Map<string, { status: number; seconds: number; retry?: number }>();
  let release: string | undefined;
  let btfSha256: string | undefined;
  let bpftool: string | undefined;
  let complete = false;
  for (const raw of lines) {
    // A kernel message can precede the marker on the same line; the marker starts the record.
    const at = raw.indexOf(`${MARK} `);
    if (at < 0) continue;
    const line = raw.slice(at + MARK.length + 1);
    const sp = line.indexOf(' ');
    const kind = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    if (kind === 'kernel') release = rest.trim() || undefined;
    else if (kind === 'btf-sha256') btfSha256 = /^[0-9a-f]{64}$/.test(rest.trim()) ? rest.trim() : undefined;
    else if (kind === 'bpftool') bpftool = rest.trim();
    else if (kind === 'done') complete = true;
    else if (kind === 'log') {
      const s2 = rest.indexOf(' ');
      const id = s2 < 0 ? rest : rest.slice(0, s2);
      const list = logs.get(id) ?? [];
      list.push(s2 < 0 ? '' : rest.slice(s2 + 1));
      logs.set(id, list);
    } else if (kind === 'result') {
      const m = /^(\S+) (\d+) ([\d.]+) ([\d.]+)(?: (\d+|-))?$/.exec(rest.trim());
      if (m) {
        const seconds = Math.round(Math.max(0, Number(m[4]) - Number(m[3])) * 100) / 100;
        results.set(m[1], { status: Number(m[2]), seconds, ...(m[5] && m[5] !== '-' ? { retry: Number(m[5]) } : {}) });
      }
    }
  }
  const objects: Record<string, ObjectResult> = {};
  for (const id of objectIds) {
    const r = results.get(id);
    const log = logs.get(id) ?? [];
    objects[id] = r ? classify(r.status, r.seconds, log, r.retry) : { verdict: 'no-result', explain: [], log };
  }
  return { release, btfSha256, bpftool, complete, objects, tail: lines.filter((l) => l.trim()).slice(-30) };
}

/**
 * Attach failures libbpf reports while bpftool goes on (it then pins the program unattached).
 * bpftool's own "does not support autoattach" is not one: it also says so for program types that
 * need a target from user space (XDP, tcx, netfilter, syscall), which only shows that libbpf has
 * no automatic attachment for them.
 */
const ATTACH_FAILURE = /^libbpf: prog '[^']+': (failed to (create|attach|auto-attach)|.*attach.*(failed|-E[A-Z]+))/;
/** Lines worth showing for a failure: libbpf's own, the verifier's verdict and bpftool's error. */
function explainLines(log: readonly string[]): string[] {
  const keep: string[] = [];
  let inVerifier = false;
  const verifier: string[] = [];
  for (const l of log) {
    if (/-- BEGIN PROG LOAD LOG --/.test(l)) {
      inVerifier = true;
      continue;
    }
    if (/-- END PROG LOAD LOG --/.test(l)) {
      inVerifier = false;
      // The verifier's reason is at the end of its log, just before the instruction count.
      keep.push(...verifier.filter((v) => !/^processed \d+ insns/.test(v)).slice(-6).map((v) => `verifier: ${v}`));
      verifier.length = 0;
      continue;
    }
    if (inVerifier) verifier.push(l);
    else if (/^(libbpf|Error|Warning)|failed|invalid|unknown|not supported|No such|Permission/i.test(l)) keep.push(l);
  }
  if (inVerifier) keep.push(...verifier.slice(-6).map((v) => `verifier: ${v}`));
  return [...new Set(keep)].slice(0, 30);
}

function classify(status: number, seconds: number, log: string[], retry?: number): ObjectResult {
  const program = /prog '([^']+)': (?:BPF program load failed|failed to load|relo #|failed to resolve|failed to create|failed to attach|failed to auto-attach)/.exec(log.join('\n'))?.[1];
  const named = program ? { program } : {};
  const split = log.indexOf(RETRY_LINE);
  const attachRun = split < 0 ? log : log.slice(0, split);
  // A reload without attaching decides whether the object loads when the attaching run only
  // failed to pin a link (see the init script).
  const loads = status === 0 || retry === 0;
  if (!loads) return { verdict: 'load-failed', status, seconds, explain: explainLines(split < 0 ? log : log.slice(split + 1)), log, ...named };
  // libbpf's attach failures come from the attaching run; bpftool net attach runs after either.
  const attach = attachRun.some((l) => ATTACH_FAILURE.test(l)) || log.some((l) => l.startsWith(NET_ATTACH_FAILED));
  if (attach) return { verdict: 'attach-failed', status, seconds, explain: explainLines(log.filter((l) => l !== RETRY_LINE)), log, ...named };
  return { verdict: 'loaded', status, seconds, explain: [], log };
}
