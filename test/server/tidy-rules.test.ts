/**
 * Kernel knowledge lives in the data, not in rule code: no kernel version literal (`'5.13'`,
 * `"6.4"`, a string or template literal that is just `M.m` or `M.m.p`) appears in code under
 * server/src/rules. Comments may name versions. libbpf release numbers are not kernel versions:
 * the few rule files that still compare `loader.minVersion` with a literal are listed below, each
 * literal with its reason, and a listed literal that is gone must leave the list too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const RULES_DIR = join(__dirname, '..', '..', 'server', 'src', 'rules');
const VERSION = /^\d+\.\d+(\.\d+)?$/;

/** The string and template literal texts of TypeScript code that match `VERSION`, with their lines (comments skipped). */
export function versionLiterals(code: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  const sc = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, code);
  // Which `{` opened what: a template's `${` or a plain brace, so that `}` resumes the template.
  const braces: ('template' | 'plain')[] = [];
  for (let t = sc.scan(); t !== ts.SyntaxKind.EndOfFileToken; t = sc.scan()) {
    if (t === ts.SyntaxKind.OpenBraceToken) braces.push('plain');
    else if (t === ts.SyntaxKind.CloseBraceToken) {
      if (braces.pop() === 'template') {
        t = sc.reScanTemplateToken(false);
        if (t === ts.SyntaxKind.TemplateMiddle) braces.push('template');
      }
    } else if (t === ts.SyntaxKind.TemplateHead) braces.push('template');
    else if (t === ts.SyntaxKind.SlashToken || t === ts.SyntaxKind.SlashEqualsToken) t = sc.reScanSlashToken();
    const literal =
      t === ts.SyntaxKind.StringLiteral ||
      t === ts.SyntaxKind.NoSubstitutionTemplateLiteral ||
      t === ts.SyntaxKind.TemplateHead ||
      t === ts.SyntaxKind.TemplateMiddle ||
      t === ts.SyntaxKind.TemplateTail;
    if (literal && VERSION.test(sc.getTokenValue().trim())) {
      out.push({ text: sc.getTokenValue(), line: code.slice(0, sc.getTokenStart()).split('\n').length });
    }
  }
  return out;
}

test('the literal scanner finds version strings in code and not in comments', () => {
  const code = [
    "// '5.13' in a line comment",
    '/* "6.4" in a block comment */',
    "const a = compareVersions(k.version, '5.13') < 0;",
    'const b = "6.4";',
    'const c = `7.1.2`;',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source as test input
    "const d = `needs ${x ? '5.3' : y} and ${z}`;",
    "const e = { f: 'not 5.5', g: '5.5x', h: /5\\.5/ };",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source as test input
    "if (x) { y(`${'4.14'}`); }",
  ].join('\n');
  assert.deepEqual(versionLiterals(code), [
    { text: '5.13', line: 3 },
    { text: '6.4', line: 4 },
    { text: '7.1.2', line: 5 },
    { text: '5.3', line: 6 },
    { text: '4.14', line: 8 },
  ]);
});

test('no version literal in server/src/rules/*.ts (kernel versions come from the data, libbpf versions from LIBBPF)', () => {
  const problems: string[] = [];
  for (const file of readdirSync(RULES_DIR)
    .filter((f) => f.endsWith('.ts'))
    .sort()) {
    for (const lit of versionLiterals(readFileSync(join(RULES_DIR, file), 'utf8'))) {
      problems.push(
        `server/src/rules/${file}:${lit.line}: '${lit.text}' (take a kernel version from the kernel database or its facts, a libbpf version from LIBBPF in server/src/analysis/loader.ts)`,
      );
    }
  }
  assert.deepEqual(problems, [], 'kernel version literals in rule code');
});
