/** Every rule has a registry entry, a doc with the fixed sections, tests, and a setting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RULES, RULE_IDS, runOrder } from '../../server/src/rules';
import type { Rule } from '../../server/src/rules/rule';
import { RULE_GROUPS } from '../../server/src/rules/groups';

const root = join(__dirname, '..', '..');

test('each rule has a doc, tests and a settings entry; ids are kebab-case and sorted', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const ruleSettings = pkg.contributes.configuration.properties['ebpfPortability.rules'].properties;
  const dir = join(root, 'test', 'server');
  const tests = readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts') && f !== 'rule-files.test.ts')
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
  assert.deepEqual([...RULE_IDS], [...RULE_IDS].sort());
  for (const r of RULES) {
    assert.match(r.meta.id, /^[a-z]+(-[a-z]+)+$/);
    const doc = join(root, 'docs', 'rules', `${r.meta.id}.md`);
    assert.ok(existsSync(doc), `docs/rules/${r.meta.id}.md`);
    const text = readFileSync(doc, 'utf8');
    for (const h of ['## What it flags', '## Why it breaks which kernels', '## Example', '## Fix', '## References']) {
      assert.ok(text.includes(h), `${r.meta.id}.md has "${h}"`);
    }
    // A caret expectation (`// ^^^^ rule-id`) under a snippet line: the finding's exact range is checked.
    assert.match(
      tests,
      new RegExp(`//\\s*\\^+\\s+${r.meta.id}\\b`),
      `a snippet test under test/server marks a ${r.meta.id} finding with carets`,
    );
    assert.ok(ruleSettings[r.meta.id], `package.json lets users set ${r.meta.id}`);
  }
  // A group (one id for several rules) has a doc and a setting too, and only rules as members.
  for (const [g, members] of Object.entries(RULE_GROUPS)) {
    assert.ok(!RULES.some((r) => r.meta.id === g), `${g} is a group, not a rule`);
    assert.ok(existsSync(join(root, 'docs', 'rules', `${g}.md`)), `docs/rules/${g}.md`);
    assert.ok(ruleSettings[g], `package.json lets users set the group ${g}`);
    for (const m of members)
      assert.ok(
        RULES.some((r) => r.meta.id === m),
        `${g} member ${m} is a rule`,
      );
  }
  const docs = readdirSync(join(root, 'docs', 'rules')).map((f) => f.replace(/\.md$/, ''));
  assert.deepEqual(docs.sort(), [...RULE_IDS], 'no doc without a rule');
});

test('the registry is sorted by id, and package.json and the README list exactly its rules and groups', () => {
  const ids = RULES.map((r) => r.meta.id);
  assert.deepEqual(ids, [...ids].sort(), 'RULES is sorted by id (the run order comes from the metadata)');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const setting = pkg.contributes.configuration.properties['ebpfPortability.rules'];
  assert.deepEqual(Object.keys(setting.properties).sort(), [...RULE_IDS], 'one package.json setting per rule and group');
  for (const id of RULE_IDS) assert.deepEqual(setting.properties[id].enum, ['error', 'warning', 'info', 'off'], `${id} takes a severity`);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| \[`([a-z-]+)`\]\(docs\/rules\/\1\.md\) \|/gm)].map((m) => m[1]);
  assert.deepEqual([...rows].sort(), [...RULE_IDS], 'one README table row per rule and group');
});

test('rules run after the rules their metadata names, and a bad relation is refused', () => {
  const order = runOrder(RULES).map((r) => r.meta.id);
  assert.equal(order.length, RULES.length);
  for (const r of RULES)
    for (const a of r.meta.after ?? []) assert.ok(order.indexOf(a) < order.indexOf(r.meta.id), `${a} runs before ${r.meta.id}`);
  assert.ok(order.indexOf('unsafe-kernel-deref') < order.indexOf('non-core-field-read'));
  const rule = (id: string, after?: string[]): Rule => ({
    meta: { id, description: '', defaultSeverity: 'error', fixable: false, ...(after ? { after } : {}) },
  });
  assert.throws(
    () => runOrder([rule('unsafe-kernel-deref', ['non-core-field-read']), rule('non-core-field-read', ['unsafe-kernel-deref'])]),
    /cycle/,
  );
  assert.throws(() => runOrder([rule('non-core-field-read', ['no-such-rule'])]), /unknown rule no-such-rule/);
  // A near miss: relations to a rule that is switched off (not in the list) are fine.
  assert.deepEqual(
    runOrder([rule('non-core-field-read', ['unsafe-kernel-deref'])]).map((r) => r.meta.id),
    ['non-core-field-read'],
  );
});
