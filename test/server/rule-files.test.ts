/** Every rule has a registry entry, a doc with the fixed sections, tests, and a setting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RULES, RULE_IDS } from '../../server/src/rules';
import { RULE_GROUPS } from '../../server/src/rules/groups';

const root = join(__dirname, '..', '..');

test('each rule has a doc, tests and a settings entry; ids are kebab-case and sorted', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const ruleSettings = pkg.contributes.configuration.properties['ebpfPortability.rules'].properties;
  const dir = join(root, 'test', 'server');
  const tests = readdirSync(dir).filter((f) => f.endsWith('.test.ts') && f !== 'rule-files.test.ts').map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
  assert.deepEqual([...RULE_IDS], [...RULE_IDS].sort());
  for (const r of RULES) {
    assert.match(r.meta.id, /^[a-z]+(-[a-z]+)+$/);
    const doc = join(root, 'docs', 'rules', `${r.meta.id}.md`);
    assert.ok(existsSync(doc), `docs/rules/${r.meta.id}.md`);
    const text = readFileSync(doc, 'utf8');
    for (const h of ['## What it flags', '## Why it breaks which kernels', '## Example', '## Fix', '## References']) {
      assert.ok(text.includes(h), `${r.meta.id}.md has "${h}"`);
    }
    assert.ok(tests.includes(`'${r.meta.id}'`) || tests.includes(` ${r.meta.id}:`), `a test under test/server checks ${r.meta.id}`);
    assert.ok(ruleSettings[r.meta.id], `package.json lets users set ${r.meta.id}`);
  }
  // A group (one id for several rules) has a doc and a setting too, and only rules as members.
  for (const [g, members] of Object.entries(RULE_GROUPS)) {
    assert.ok(!RULES.some((r) => r.meta.id === g), `${g} is a group, not a rule`);
    assert.ok(existsSync(join(root, 'docs', 'rules', `${g}.md`)), `docs/rules/${g}.md`);
    assert.ok(ruleSettings[g], `package.json lets users set the group ${g}`);
    for (const m of members) assert.ok(RULES.some((r) => r.meta.id === m), `${g} member ${m} is a rule`);
  }
  const docs = readdirSync(join(root, 'docs', 'rules')).map((f) => f.replace(/\.md$/, ''));
  assert.deepEqual(docs.sort(), [...RULE_IDS], 'no doc without a rule');
});
