/**
 * Boots one kernel with the matrix initramfs under QEMU (TCG: no KVM needed) and turns its
 * serial output into per-object verdicts: loaded, attach-failed or load-failed, each failure with
 * the libbpf and verifier lines that explain it.
 */
import { spawn } from 'node:child_process';
import { ARCHES, type ArchSpec } from './arch';
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
  /** The one line that best says why it failed (the verifier's reason, else libbpf's); empty when it loaded. */
  readonly reason: string;
  /** Every line the load printed (capped in the guest). */
  readonly log: string[];
  /** Each program loaded alone by the per-program loader, by name (absent without the loader). */
  readonly programs?: Record<string, ProgramResult>;
}

/** One program of an object, loaded alone and attached where libbpf can (groundtruth/loader/loader.c). */
export interface ProgramResult {
  readonly verdict: Exclude<KernelVerdict, 'no-result'> | 'open-failed';
  readonly section: string;
  /** The error number libbpf returned (0 when it loaded and attached). */
  readonly errno: number;
  readonly explain: string[];
  readonly reason: string;
  readonly log: string[];
}

/** One boot's outcome. */
export interface BootResult {
  /** `uname -r` the guest reported. */
  readonly release?: string;
  /** sha256 of the guest's /sys/kernel/btf/vmlinux. */
  readonly btfSha256?: string;
  readonly bpftool?: string;
  /** The libbpf version the per-program loader reported (absent without it). */
  readonly loaderLibbpf?: string;
  /** vmlinux functions that exist only as compiler clones: name → a clone's symbol (from /proc/kallsyms). */
  readonly cloneOnly?: Record<string, string>;
  /** The guest printed its closing line (every object was tried). */
  readonly complete: boolean;
  readonly objects: Record<string, ObjectResult>;
  /** Wall time of the whole boot, load and power-off, in milliseconds. */
  readonly ms: number;
  /** The last serial lines, for diagnosing a boot that never reported. */
  readonly tail: string[];
  readonly timedOut: boolean;
}

/** The QEMU command line for a kernel and initramfs of an architecture (default x86_64). */
export function qemuArgs(vmlinuz: string, initrd: string, spec: ArchSpec = ARCHES.x86_64): string[] {
  return [
    ...spec.machine,
    '-nographic',
    '-no-reboot',
    '-kernel',
    vmlinuz,
    '-initrd',
    initrd,
    '-append',
    `console=${spec.console} panic=-1 quiet`,
  ];
}

/** Boots under `timeout` seconds (QEMU is killed after that); resolves with the parsed output. */
export function boot(
  qemu: string,
  vmlinuz: string,
  initrd: string,
  timeoutS: number,
  objectIds: readonly string[],
  spec: ArchSpec = ARCHES.x86_64,
): Promise<BootResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('timeout', ['-k', '5', String(timeoutS), qemu, ...qemuArgs(vmlinuz, initrd, spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
  let cloneOnly: Record<string, string> | undefined;
  let loaderLibbpf: string | undefined;
  /** Per object, per program: the loader's lines, then its verdict. */
  const progLogs = new Map<string, Map<string, string[]>>();
  const progs = new Map<string, Record<string, ProgramResult>>();
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
    else if (kind === 'pl') {
      const m = /^(\S+) ([VLP]) ?(.*)$/.exec(rest);
      if (!m) continue;
      const [, id, what, body] = m;
      if (what === 'V') loaderLibbpf = body.trim();
      else if (what === 'L') {
        const sp2 = body.indexOf(' ');
        const prog = sp2 < 0 ? body : body.slice(0, sp2);
        let byProg = progLogs.get(id);
        if (!byProg) progLogs.set(id, (byProg = new Map()));
        const list = byProg.get(prog) ?? [];
        list.push(sp2 < 0 ? '' : body.slice(sp2 + 1));
        byProg.set(prog, list);
      } else {
        const r = /^(\S+) (loaded|load-failed|attach-failed|open-failed) (-?\d+) (\S+)$/.exec(body.trim());
        if (!r) continue;
        const log = progLogs.get(id)?.get(r[1]) ?? [];
        progLogs.get(id)?.delete(r[1]);
        const why = r[2] === 'loaded' ? { explain: [], reason: '' } : explainLines(log);
        let rec = progs.get(id);
        if (!rec) progs.set(id, (rec = {}));
        rec[r[1]] = { verdict: r[2] as ProgramResult['verdict'], section: r[4], errno: Number(r[3]), ...why, log };
      }
    } else if (kind === 'clone-only') {
      cloneOnly ??= {};
      for (const pair of rest.trim().split(/\s+/)) {
        const m = /^([A-Za-z_]\w*)=(\S+)$/.exec(pair);
        if (m) cloneOnly[m[1]] = m[2];
      }
    } else if (kind === 'log') {
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
    const base: ObjectResult = r ? classify(r.status, r.seconds, log, r.retry) : { verdict: 'no-result', explain: [], reason: '', log };
    const p = progs.get(id);
    objects[id] = p ? { ...base, programs: p } : base;
  }
  return {
    release,
    btfSha256,
    bpftool,
    ...(loaderLibbpf ? { loaderLibbpf } : {}),
    ...(cloneOnly ? { cloneOnly } : {}),
    complete,
    objects,
    tail: lines.filter((l) => l.trim()).slice(-30),
  };
}

/**
 * Attach failures libbpf reports while bpftool goes on (it then pins the program unattached).
 * bpftool's own "does not support autoattach" is not one: it also says so for program types that
 * need a target from user space (XDP, tcx, netfilter, syscall), which only shows that libbpf has
 * no automatic attachment for them.
 */
const ATTACH_FAILURE = /^libbpf: prog '[^']+': (failed to (create|attach|auto-attach)|.*attach.*(failed|-E[A-Z]+))/;
/** An instruction line of a verifier log: `9: (61) r1 = *(u32 *)(r7 +2236)` or `1: <invalid CO-RE relocation>`. */
const INSN = /^\d+: [(<]/;

/**
 * The verifier's reason in its log: the lines right after the last instruction it looked at (up
 * to a blank line; 6.x+ kernels then add a long report), else the first lines of the log (for
 * rejections before any instruction is checked), with the source and instruction that failed.
 */
function verifierReason(lines: readonly string[]): { context: string[]; reason: string[] } {
  const body = lines.filter((l) => !/^processed \d+ insns/.test(l));
  let last = -1;
  body.forEach((l, i) => {
    if (INSN.test(l)) last = i;
  });
  // Register-state and precision-tracking lines; an error like "R7 invalid mem access" is none.
  const state = /^\s*(R\d+(_[rw])?=|from \d+ to \d+|last_idx|regs=|parent didn't|mark_precise|frame\d+:)/;
  const after = (from: number) => {
    const out: string[] = [];
    for (let i = from; i < body.length && out.length < 3; i++) {
      if (body[i].trim() === '') {
        if (out.length) break;
        continue;
      }
      if (!state.test(body[i])) out.push(body[i]);
    }
    return out;
  };
  const reason = last >= 0 ? after(last + 1) : after(0);
  const source = last >= 0 ? [...body.slice(0, last)].reverse().find((l) => l.startsWith(';')) : undefined;
  const context = last >= 0 ? [...(source ? [source] : []), body[last]] : [];
  const summary = body.filter((l) => /^Verification failed:/.test(l));
  return { context, reason: [...reason, ...summary] };
}

/** Lines worth showing for a failure: libbpf's own, the verifier's reason and bpftool's error. */
function explainLines(log: readonly string[]): { explain: string[]; reason: string } {
  const keep: string[] = [];
  let verifier: string[] | undefined;
  let reason: string | undefined;
  const closeVerifier = () => {
    const v = verifierReason(verifier!);
    keep.push(...v.context.map((l) => `verifier: ${l}`), ...v.reason.map((l) => `verifier: ${l}`));
    reason ??= v.reason[0];
    verifier = undefined;
  };
  for (const l of log) {
    if (/-- BEGIN PROG LOAD LOG --/.test(l)) verifier = [];
    else if (/-- END PROG LOAD LOG --/.test(l) && verifier) closeVerifier();
    else if (verifier) verifier.push(l);
    else if (/^(libbpf|Error|Warning)|failed|invalid|unknown|not supported|No such|Permission/i.test(l)) keep.push(l);
  }
  if (verifier) closeVerifier();
  // Without a verifier log, libbpf's specific line says more than bpftool's closing "Error:".
  reason ??=
    log.find((l) => /^libbpf: .*(extern|map '|failed to (create|attach|resolve|find)|load failed|incompatible|invalid)/.test(l)) ??
    log.find((l) => /attach failed/.test(l)) ??
    keep[keep.length - 1];
  return { explain: [...new Set(keep)].slice(0, 30), reason: (reason ?? '').trim() };
}

function classify(status: number, seconds: number, log: string[], retry?: number): ObjectResult {
  const program =
    /prog '([^']+)': (?:BPF program load failed|failed to load|relo #|failed to resolve|failed to create|failed to attach|failed to auto-attach)/.exec(
      log.join('\n'),
    )?.[1];
  const named = program ? { program } : {};
  const split = log.indexOf(RETRY_LINE);
  const attachRun = split < 0 ? log : log.slice(0, split);
  // A reload without attaching decides whether the object loads when the attaching run only
  // failed to pin a link (see the init script).
  const loads = status === 0 || retry === 0;
  if (!loads) return { verdict: 'load-failed', status, seconds, ...explainLines(split < 0 ? log : log.slice(split + 1)), log, ...named };
  // libbpf's attach failures come from the attaching run; bpftool net attach runs after either.
  const attach = attachRun.some((l) => ATTACH_FAILURE.test(l)) || log.some((l) => l.startsWith(NET_ATTACH_FAILED));
  if (attach) return { verdict: 'attach-failed', status, seconds, ...explainLines(log.filter((l) => l !== RETRY_LINE)), log, ...named };
  return { verdict: 'loaded', status, seconds, explain: [], reason: '', log };
}

/** The reason with the failing program's name, unless the reason already names it. */
export function reasonWithProgram(r: Pick<ObjectResult, 'program' | 'reason'>): string {
  return r.program && !r.reason.includes(`'${r.program}'`) ? `${r.program}: ${r.reason}` : r.reason;
}
