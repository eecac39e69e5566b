/**
 * `.gitignore` semantics for the directory walk of `check` and `requirements` (gitignore(5)):
 * blank lines and `#` comments, `!` re-includes, a trailing `/` matches directories only, a
 * pattern with a `/` before its end is anchored to its file's directory (otherwise it matches a
 * name at any depth), `*`, `?` and `[…]` never match `/`, `**` spans directories (`**​/x`, `x/**`,
 * `a/**​/b`). Files deeper in the tree take precedence, and within one file the last matching
 * pattern decides. A directory that is ignored is not entered, so nothing below it comes back.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** One pattern of a `.gitignore`, compiled. */
interface Pattern {
  readonly negate: boolean;
  readonly dirOnly: boolean;
  readonly regex: RegExp;
}

/** The patterns of one `.gitignore` file and the directory they are relative to. */
export interface IgnoreFile {
  readonly base: string;
  readonly patterns: readonly Pattern[];
}

/** Compiles the text of a `.gitignore` whose directory is `base`. */
export function parseGitignore(text: string, base: string): IgnoreFile {
  const patterns: Pattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw;
    if (line === '' || line.startsWith('#')) continue;
    // Trailing spaces are dropped unless escaped with a backslash.
    line = line.replace(/(?<!\\)\s+$/, '');
    if (line === '') continue;
    let negate = false;
    if (line.startsWith('!')) {
      negate = true;
      line = line.slice(1);
    } else if (line.startsWith('\\!') || line.startsWith('\\#')) line = line.slice(1);
    let dirOnly = false;
    if (line.endsWith('/') && !line.endsWith('\\/')) {
      dirOnly = true;
      line = line.replace(/\/+$/, '');
    }
    if (line === '') continue;
    // A slash at the start or in the middle anchors the pattern to this file's directory.
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    const body = globToRegex(line);
    const regex = new RegExp(`^${anchored ? '' : '(?:.*/)?'}${body}$`);
    patterns.push({ negate, dirOnly, regex });
  }
  return { base, patterns };
}

/** The regular expression of a gitignore glob (without anchoring). */
function globToRegex(glob: string): string {
  let out = '';
  let i = 0;
  while (i < glob.length) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      const before = i === 0 || glob[i - 1] === '/';
      const after = i + 2 === glob.length || glob[i + 2] === '/';
      if (before && after) {
        if (i + 2 === glob.length) {
          // `x/**`: everything inside x.
          out += '.*';
          i += 2;
        } else {
          // `**/` at the start or `/**/` in the middle: zero or more directories.
          out += '(?:.*/)?';
          i += 3;
        }
        continue;
      }
      // Elsewhere two stars are two ordinary stars.
      out += '[^/]*';
      i += 2;
      continue;
    }
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) out += '\\[';
      else {
        let cls = glob.slice(i + 1, close);
        const neg = cls.startsWith('!') || cls.startsWith('^');
        if (neg) cls = cls.slice(1);
        cls = cls.replace(/\\/g, '\\\\').replace(/\[/g, '\\[');
        out += neg ? `(?!/)[^${cls}]` : `[${cls}]`;
        i = close + 1;
        continue;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      out += escapeRe(glob[i + 1]);
      i += 2;
      continue;
    } else out += escapeRe(c);
    i++;
  }
  return out;
}

const escapeRe = (c: string) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * Whether `path` (absolute) is ignored by `files` (outermost first): the last pattern that
 * matches, in the deepest file that has one, decides; undefined when none matches.
 */
export function ignoredBy(files: readonly IgnoreFile[], path: string, isDir: boolean): boolean {
  let verdict = false;
  for (const f of files) {
    const rel = relative(f.base, path).split(sep).join('/');
    if (rel === '' || rel.startsWith('..')) continue;
    for (const p of f.patterns) {
      if (p.dirOnly && !isDir) continue;
      if (p.regex.test(rel)) verdict = !p.negate;
    }
  }
  return verdict;
}

/** Reads `dir/.gitignore` if there is one. */
export function readGitignore(dir: string): IgnoreFile | undefined {
  const p = join(dir, '.gitignore');
  try {
    if (!statSync(p).isFile()) return undefined;
    return parseGitignore(readFileSync(p, 'utf8'), dir);
  } catch {
    return undefined;
  }
}

/**
 * The `.gitignore` files that apply to `dir` from above it: those of its parent directories up to
 * the repository's root (the nearest directory with `.git`), outermost first. Outside a
 * repository, none.
 */
export function gitignoresAbove(dir: string): IgnoreFile[] {
  const chain: string[] = [];
  let d = resolve(dir);
  for (;;) {
    const parent = dirname(d);
    if (exists(join(d, '.git'))) break;
    if (parent === d) return [];
    chain.push(parent);
    d = parent;
  }
  return chain
    .reverse()
    .map(readGitignore)
    .filter((f): f is IgnoreFile => !!f);
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}
