/**
 * `bcc-needs-kernel-headers`: one note per BCC program (a C file BCC compiles, or the C a BCC tool
 * in Python hands to `BPF(text=…)`): BCC runs clang on every host, at load time, against that
 * host's kernel headers (`/lib/modules/$(uname -r)/build`) or, without them, the headers a kernel
 * built with `CONFIG_IKHEADERS` carries (`/sys/kernel/kheaders.tar.xz`, built in or the `kheaders`
 * module). A host with neither cannot compile the program at all. The note says which target
 * kernels carry kheaders (their configs) and how the target's distributions install headers (the
 * curated facts' `kernel_headers_install`, from Pixie's and Inspektor Gadget's documents).
 */
import type { Kernel } from '../../../kernel-db/src/query/db';
import { isBccSite } from '../analysis/file';
import { findingMessage } from '../analysis/model';
import { describeSome } from './attach-points';
import type { Rule, RuleContext } from './rule';

export const bccNeedsKernelHeaders: Rule = {
  meta: {
    id: 'bcc-needs-kernel-headers',
    description: 'BCC program: compiled on every host against its kernel headers (or kheaders)',
    defaultSeverity: 'info',
    fixable: false,
  },
  checkFile(ctx) {
    if (!ctx.model.bcc) return;
    // The name of the first BCC construct (a map or probe macro, a `kprobe__` function, a map
    // method) carries the note: a name, never arguments a Python tool may fill in.
    const site = ctx.model.sites().find(isBccSite);
    const text = ctx.model.text;
    const name = site ? text.indexOf(site.name, site.start) : -1;
    const fn = ctx.model.functions.find((f) => f.body);
    const span =
      site && name >= 0 && name < site.end
        ? { start: name, end: name + site.name.length }
        : fn
          ? { start: fn.node.startIndex, end: fn.node.startIndex + 1 }
          : undefined;
    if (!span) return;
    ctx.report({ span, kernels: ctx.kernels.map((k) => k.name), message: message(ctx) });
  },
};

/** Where the target kernels carry their own headers: built in, as the `kheaders` module, not at all. */
function kheaders(ctx: RuleContext): string {
  const answers = ctx.db.config('CONFIG_IKHEADERS', ctx.kernels);
  const by = (v: (value: string | undefined) => boolean): Kernel[] =>
    answers.filter((a) => a.present !== null && v(a.value)).map((a) => a.kernel);
  const builtIn = by((v) => v === 'y');
  const module = by((v) => v === 'm');
  const off = by((v) => v === 'n' || v === 'unset');
  const unknown = answers.filter((a) => a.present === null).length;
  const parts: string[] = [];
  if (builtIn.length) parts.push(`built in on ${describeSome(builtIn, ctx.kernels)}`);
  if (module.length) parts.push(`a module on ${describeSome(module, ctx.kernels)} (\`modprobe kheaders\`)`);
  if (off.length) parts.push(`off on ${describeSome(off, ctx.kernels)}`);
  const known = parts.length ? `CONFIG_IKHEADERS is ${parts.join('; ')}` : '';
  const rest = unknown ? `${known ? '; ' : ''}${unknown} of the ${ctx.kernels.length} kernels have no known config` : '';
  return known || rest ? `${known}${rest}.` : '';
}

/** The install advice for the distributions among the target kernels (all of it when none matches). */
function install(ctx: RuleContext): string {
  const facts = ctx.db.facts.analysis.kernel_headers_install;
  const families = new Set(ctx.kernels.map((k) => k.distro));
  const mine = facts.rows.filter((r) => r.families.some((f) => families.has(f)));
  const rows = mine.length ? mine : facts.rows;
  const others = mine.length && [...families].some((f) => !facts.rows.some((r) => r.families.includes(f)));
  const lines = rows.map((r) => `${r.label}: ${r.commands.map((c) => `\`${c}\``).join(' or ')}`);
  return (
    `Install the headers that match \`uname -r\` on every host (${lines.join('; ')}${others ? '; other distributions: their kernel headers package' : ''}). ` +
    `${facts.without.join(', ')} ships no headers package.`
  );
}

function message(ctx: RuleContext): string {
  return findingMessage(
    'BCC compiles this program on each host against its kernel headers; every host needs them (or kheaders)',
    "BCC runs clang at load time with the running kernel's headers (/lib/modules/$(uname -r)/build) or, without them, " +
      "the kernel's own /sys/kernel/kheaders.tar.xz; a host with neither cannot compile the program, and headers that do not match " +
      'the running build (vendor backports) give wrong layouts.',
    kheaders(ctx),
    install(ctx),
    'A libbpf CO-RE build of the program needs no headers on the host, only its BTF (CONFIG_DEBUG_INFO_BTF).',
  );
}
