/**
 * The object pass: verdicts from a compiled BPF object instead of its source. For each program
 * section and each target kernel, the CO-RE relocations are resolved as libbpf resolves them
 * (kernel-db/src/query/coreRelo.ts), their values patched in, and the instructions the verifier
 * reaches found (kernel-db/src/btf/insns.ts); a failing relocation or a helper call the kernel does
 * not offer counts only where it is reached. Each verdict names its rule (the one the source pass
 * would use), the instruction's source line from `.BTF.ext`, and the kernels that fail.
 */
import { CoreReloKind, type CoreRelo, lineOf } from '../../../kernel-db/src/btf/ext';
import { decodeInsns, reachable } from '../../../kernel-db/src/btf/insns';
import type { BpfObject } from '../../../kernel-db/src/btf/object';
import { FIELD_KINDS, RELO_KIND_NAMES, type ReloOutcome, type ReloResult, resolveRelo } from '../../../kernel-db/src/query/coreRelo';
import type { Kernel, KernelDb } from '../../../kernel-db/src/query/db';
import { describeKernels } from '../../../kernel-db/src/query/summary';
import type { Loader } from '../analysis/loader';
import { findingMessage, headlineWith } from '../analysis/model';
import { allowedFor, PROBE_READ_LEGACY, rewritesProbeRead } from './helper-unavailable';

/** One verdict of the object pass, placed at a source line. */
export interface ObjectVerdict {
  readonly rule: 'field-missing-in-range' | 'type-missing-in-range' | 'helper-unavailable';
  readonly section: string;
  /** Source position from line_info (1-based line and column; column 0 when unknown). */
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
  readonly kernels: readonly Kernel[];
}

/** Checks an object's programs against `kernels`. */
export function checkObject(db: KernelDb, obj: BpfObject, kernels: readonly Kernel[], loader: Loader): ObjectVerdict[] {
  const ext = obj.ext;
  const out: ObjectVerdict[] = [];
  const helperById = new Map(db.facts.helpers.map((h) => [h.id, h]));
  // One answer per distinct member or type asked, for this object and kernel list.
  const memo = new Map<string, readonly ReloOutcome[]>();
  const helpers = new Map<string, ReturnType<KernelDb['helper']>['kernels']>();
  const helperOn = (name: string) => {
    let a = helpers.get(name);
    if (!a) helpers.set(name, (a = db.helper(name, kernels).kernels));
    return a;
  };
  for (const prog of obj.programs) {
    const insns = decodeInsns(prog.code);
    const relos = (ext?.coreRelos ?? []).filter((r) => r.section === prog.section);
    const resolved = relos.map((r) => resolveRelo(db, obj.btf, r, kernels, memo));
    // Kernels that patch the existence checks alike reach the same instructions: one walk each.
    const reach = new Map<string, Set<number>>();
    const reachOn = (i: number): Set<number> => {
      const patched = new Map<number, number>();
      for (const r of resolved) {
        if (!r.existence || r.outcomes[i] === 'unknown') continue;
        patched.set(r.relo.insnOff, r.outcomes[i] === 'ok' ? 1 : 0);
      }
      const key = [...patched].map(([o, v]) => `${o}=${v}`).join(',');
      let s = reach.get(key);
      if (!s) reach.set(key, (s = reachable(insns, patched)));
      return s;
    };
    // Without existence checks every kernel reaches the same instructions.
    const reached = resolved.some((r) => r.existence)
      ? kernels.map((_, i) => reachOn(i))
      : (() => {
          const all = reachable(insns, new Map());
          return kernels.map(() => all);
        })();
    const at = (insnOff: number) => {
      const l = ext ? lineOf(ext, prog.section, insnOff) : undefined;
      return l ? { file: l.file, line: l.line, column: l.column } : {};
    };
    for (const r of resolved) {
      if (r.existence) continue;
      const failing = kernels.filter((_, i) => r.outcomes[i] === 'fail' && reached[i].has(r.relo.insnOff));
      if (failing.length === 0) continue;
      out.push({ ...reloVerdict(r, failing, kernels), section: prog.section, ...at(r.relo.insnOff) });
    }
    const section = db.facts.section(prog.section.replace(/^\?/, ''));
    const progType = section?.fact.prog_type ?? undefined;
    for (const x of insns) {
      // `call imm` with src 0 calls a helper by id.
      if (x.code !== 0x85 || x.src !== 0) continue;
      const fact = helperById.get(x.imm);
      if (!fact) continue;
      const avail = helperOn(fact.name);
      const legacy = PROBE_READ_LEGACY[fact.name];
      const stand = legacy && rewritesProbeRead(loader) ? helperOn(legacy) : undefined;
      const missing = kernels.filter((_, i) => avail[i].present === false && stand?.[i].present !== true && reached[i].has(x.off));
      const notAllowed = allowedFor(fact, progType) === false ? kernels.filter((_, i) => reached[i].has(x.off)) : [];
      const failing = [...new Set([...missing, ...notAllowed])];
      if (failing.length === 0) continue;
      out.push({
        rule: 'helper-unavailable',
        section: prog.section,
        ...at(x.off),
        message: findingMessage(
          ...headlineWith(
            missing.length
              ? `\`${fact.name}\` is missing on ${missing.length} of ${kernels.length} target kernels`
              : `${prog.section} programs may not call \`${fact.name}\``,
            'the verifier rejects the call there',
          ),
          missing.length ? `Missing on ${describeKernels(missing, kernels)} (it came in ${fact.since}).` : undefined,
          notAllowed.length ? `The program type ${progType} may not call it on the newest kernels either.` : undefined,
          'Found in the compiled object: a call the verifier reaches on those kernels.',
        ),
        kernels: failing,
      });
    }
  }
  return out;
}

function reloVerdict(r: ReloResult, failing: Kernel[], kernels: readonly Kernel[]): Omit<ObjectVerdict, 'section'> {
  const q = r.query;
  const what = q?.text ?? `type ${r.relo.typeId} access ${r.relo.access}`;
  const rule = FIELD_KINDS.has(r.relo.kind) ? 'field-missing-in-range' : 'type-missing-in-range';
  return {
    rule,
    message: findingMessage(
      ...headlineWith(
        `CO-RE relocation of ${what} fails on ${failing.length} of ${kernels.length} target kernels`,
        'the program does not load there',
      ),
      `The ${RELO_KIND_NAMES[r.relo.kind]} relocation finds no ${describe(r.relo, q?.root)} on ${describeKernels(failing, kernels)}; ` +
        'libbpf poisons the instruction and the verifier reaches it there.',
      'Found in the compiled object, with the guards around it resolved per kernel.',
    ),
    kernels: failing,
  };
}

function describe(relo: CoreRelo, root: string | undefined): string {
  if (FIELD_KINDS.has(relo.kind)) return `matching member (by name and kind) in ${root ? `\`${root}\`` : 'the kernel type'}`;
  if (relo.kind === CoreReloKind.EnumvalValue) return 'enum value of that name';
  return `type named \`${root ?? '?'}\``;
}
