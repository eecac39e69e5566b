/**
 * `ebpf-portability explain <rule>`: a rule's documentation (`docs/rules/<id>.md`, shipped with
 * the package) rendered for a terminal: headings underlined, code blocks indented, inline code
 * and emphasis coloured on a terminal (plain text otherwise), links written out.
 */
import { readFileSync } from 'node:fs';
import { RULE_IDS } from '../../server/src/driver/settings';
import { parseArgs, UsageError } from './args';
import type { Io } from './db';
import { ruleDocPath, ruleDocUrl } from './pkg';
import { type Style, style } from './style';
import { nearest } from './suggest';

const USAGE = `usage: ebpf-portability explain <rule>

Prints a rule's documentation: what it flags, why it breaks which kernels, an example, the fix.
rules: ${RULE_IDS.join(', ')}
`;

/** Runs `explain`; returns the exit status. */
export function explainCommand(argv: string[], io: Io): number {
  const args = parseArgs(argv, { flags: ['help'] });
  if (args.flags.has('help')) {
    io.out(USAGE);
    return 0;
  }
  if (args.positional.length !== 1) throw new UsageError('explain takes one rule id, e.g. ebpf-portability explain helper-unavailable');
  const id = args.positional[0].replace(/^\[|\]$/g, '');
  if (!RULE_IDS.includes(id)) {
    const near = nearest(id, RULE_IDS);
    throw new UsageError(`unknown rule "${id}"${near.length ? `; did you mean ${near.join(', ')}?` : ` (rules: ${RULE_IDS.join(', ')})`}`);
  }
  const text = readFileSync(ruleDocPath(id), 'utf8');
  const url = ruleDocUrl(id);
  io.out(renderMarkdown(text, style(io.color === true)) + (url ? `\nOnline: ${url}\n` : ''));
  return 0;
}

/** Markdown as terminal text (the subset the rule docs use). */
export function renderMarkdown(md: string, st: Style): string {
  const out: string[] = [];
  let fence = false;
  for (const line of md.replace(/\r\n/g, '\n').split('\n')) {
    if (/^\s*```/.test(line)) {
      fence = !fence;
      continue;
    }
    if (fence) {
      out.push(`    ${st.cyan(line)}`);
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      const title = inline(h[2], st);
      const plain = inline(h[2], style(false));
      out.push(st.bold(title));
      out.push(h[1].length === 1 ? '='.repeat(plain.length) : '-'.repeat(plain.length));
      continue;
    }
    out.push(inline(line, st));
  }
  // At most one blank line in a row, none at the end.
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

/** Inline markup of one line: code, bold, emphasis, links. */
function inline(line: string, st: Style): string {
  const plain = st.bold('x') === 'x';
  return (
    line
      // Links to other rule docs name the rule (`explain` shows it); anchors keep their text.
      .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, text: string, href: string) =>
        href.startsWith('#') || /^(\.\/)?[a-z0-9-]+\.md$/.test(href) ? text : `${text} <${href}>`,
      )
      .replace(/`([^`]+)`/g, (_, code: string) => (plain ? `\`${code}\`` : st.cyan(code)))
      .replace(/\*\*([^*]+)\*\*/g, (_, b: string) => st.bold(b))
      .replace(/(^|[\s(])\*([^*\s][^*]*)\*(?=[\s).,;:]|$)/g, (_, pre: string, em: string) => `${pre}${plain ? em : st.bold(em)}`)
  );
}
