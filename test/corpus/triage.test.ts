/**
 * Every error and warning the linter prints on the real-code corpus has a verdict in
 * test/corpus/triage.json, judged at its severity (true, with the kernel evidence, or false with
 * what causes it). The findings triaged false are the known work left: their number may only go
 * down. Needs ../shared/corpus and the built CLI; says it is skipped without them.
 */

/** Printed findings triaged false today (errors among them): lower these as they are fixed. */
const KNOWN_FALSE = { all: 0, errors: 0 };
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const corpus = process.env.EBPF_CORPUS ?? join(root, '..', 'shared', 'corpus');
const present = existsSync(corpus) && existsSync(join(root, 'dist', 'cli.js'));

test('corpus: every error and warning is triaged; no more false ones than the known ones', {
  skip: present ? false : `skipped: ${corpus} or dist/cli.js is absent`,
}, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'corpus', 'main.ts'), '--json'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, EBPF_CORPUS: corpus },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { untriaged: string[]; false: string[]; headlines: string[]; stale: string[] };
  assert.deepEqual(out.untriaged, [], 'findings without a verdict in test/corpus/triage.json (npm run corpus -- --untriaged)');
  // The file holds the verdicts of what is printed today, nothing else.
  assert.deepEqual(out.stale, [], 'verdicts of findings no longer printed (npm run corpus -- --stale; --prune removes them)');
  // Every finding (info among them) opens with a headline of at most 120 characters, as written.
  assert.deepEqual(out.headlines, [], 'findings whose first line is over 120 characters or cut to fit (npm run corpus)');
  const errors = out.false.filter((k) => k.endsWith(' error'));
  assert.ok(
    out.false.length <= KNOWN_FALSE.all,
    `${out.false.length} false findings printed, more than the ${KNOWN_FALSE.all} known:\n${out.false.join('\n')}`,
  );
  assert.ok(
    errors.length <= KNOWN_FALSE.errors,
    `${errors.length} false errors printed, more than the ${KNOWN_FALSE.errors} known:\n${errors.join('\n')}`,
  );
  const triage = JSON.parse(readFileSync(join(root, 'test', 'corpus', 'triage.json'), 'utf8')) as { evidence: string }[];
  assert.ok(
    triage.every((t) => t.evidence.length >= 20),
    'every verdict gives its evidence',
  );
});

test('corpus: the triage file stays compact and in one order (one verdict a line, sorted by file, line, rule, severity)', () => {
  const text = readFileSync(join(root, 'test', 'corpus', 'triage.json'), 'utf8');
  const entries = JSON.parse(text) as { file: string; line: number; rule: string; severity: string; verdict: string; evidence: string }[];
  const key = (e: (typeof entries)[number]) => `${e.file}\u0000${String(e.line).padStart(6, '0')}\u0000${e.rule}\u0000${e.severity}`;
  const sorted = [...entries].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const canonical = `[\n${sorted
    .map((e) =>
      JSON.stringify({ file: e.file, line: e.line, rule: e.rule, severity: e.severity, verdict: e.verdict, evidence: e.evidence }),
    )
    .join(',\n')}\n]\n`;
  assert.equal(text, canonical, 'write test/corpus/triage.json one entry a line, sorted');
  assert.equal(new Set(entries.map(key)).size, entries.length, 'one verdict per finding');
});
