/**
 * What the CLI knows about its own package: its version, where its rule docs are (on disk and
 * on the web), read from `package.json` beside the bundle (`dist/../package.json`) or the sources.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The package root: the folder with `package.json` and `docs/`. */
export function packageRoot(): string {
  for (const up of [['..'], ['..', '..']]) {
    const dir = join(__dirname, ...up);
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'docs', 'rules'))) return dir;
  }
  return join(__dirname, '..');
}

interface PackageJson {
  readonly name: string;
  readonly version: string;
  readonly homepage?: string;
  readonly repository?: string | { readonly url: string };
}

let cached: PackageJson | undefined;

/** The package's `package.json`. */
export function packageJson(): PackageJson {
  cached ??= JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as PackageJson;
  return cached;
}

/** The repository's web address (from `repository`), without `git+` or `.git`. */
export function repositoryUrl(): string | undefined {
  const r = packageJson().repository;
  const url = typeof r === 'string' ? r : r?.url;
  return url?.replace(/^git\+/, '').replace(/\.git$/, '');
}

/** A rule's documentation on the web (`docs/rules/<id>.md` on the main branch). */
export function ruleDocUrl(id: string): string | undefined {
  const repo = repositoryUrl();
  return repo ? `${repo}/blob/main/docs/rules/${id}.md` : undefined;
}

/** A rule's documentation on disk, shipped with the package. */
export function ruleDocPath(id: string): string {
  return join(packageRoot(), 'docs', 'rules', `${id}.md`);
}
