// Preprocessor directives that matter to BPF portability, reported as sites. tree-sitter-c parses
// them all, so they are never masked.

import { lexC } from './lexer';
import type { DirectiveSite, MacroArg } from './sites';

const DIRECTIVE_PATTERNS: Array<{ re: RegExp; args: 'parens' | 'rest' | 'none' }> = [
  { re: /^#[ \t]*(pragma)[ \t]+(clang)[ \t]+(attribute)[ \t]+(push)\b/, args: 'parens' },
  { re: /^#[ \t]*(pragma)[ \t]+(clang)[ \t]+(attribute)[ \t]+(pop)\b/, args: 'none' },
  { re: /^#[ \t]*(pragma)[ \t]+(unroll)\b/, args: 'rest' },
  { re: /^#[ \t]*(pragma)[ \t]+(GCC)[ \t]+(unroll)\b/, args: 'rest' },
  { re: /^#[ \t]*(pragma)[ \t]+(clang)[ \t]+(loop)\b/, args: 'rest' },
  { re: /^#[ \t]*(define)[ \t]+(BPF_NO_PRESERVE_ACCESS_INDEX|BPF_NO_GLOBAL_DATA)\b/, args: 'none' },
];

/** Reports a BPF-relevant directive; `base` is the directive's offset in the source. */
export function directiveSite(text: string, base: number): DirectiveSite | null {
  for (const { re, args: argForm } of DIRECTIVE_PATTERNS) {
    const m = re.exec(text);
    if (!m) continue;
    const name = m.slice(1).join(' ');
    const end = base + text.replace(/[ \t]+$/, '').length;
    const tail = text.slice(m[0].length);
    const tailBase = base + m[0].length;
    let args: MacroArg[] = [];
    if (argForm === 'rest') {
      // A trailing comment is not part of the argument.
      const comment = tail.search(/\/[/*]/);
      const code = comment < 0 ? tail : tail.slice(0, comment);
      const lead = code.length - code.trimStart().length;
      const body = code.trim();
      if (body) args = [{ text: body, start: tailBase + lead, end: tailBase + lead + body.length }];
    } else if (argForm === 'parens') {
      args = parenArgs(tail, tailBase);
    }
    return { kind: 'directive', name, start: base, end, args, masked: false };
  }
  return null;
}

/** Splits the first parenthesized list in `text` at top-level commas (offsets shifted by `base`). */
function parenArgs(text: string, base: number): MacroArg[] {
  const { tokens, match } = lexC(text);
  const open = tokens.findIndex((t) => t.text === '(');
  if (open < 0 || match[open]! < 0) return [];
  const close = match[open]!;
  const args: MacroArg[] = [];
  let first = open + 1;
  for (let j = open + 1; j <= close; j++) {
    const t = tokens[j]!;
    if (j === close || (t.text === ',' && j < close)) {
      if (j > first) {
        const start = tokens[first]!.start;
        const end = tokens[j - 1]!.end;
        args.push({ text: text.slice(start, end), start: base + start, end: base + end });
      }
      first = j + 1;
      continue;
    }
    const m = match[j]!;
    if (m > j) j = m;
  }
  return args;
}
