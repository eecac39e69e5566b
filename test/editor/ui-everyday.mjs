#!/usr/bin/env node
// The everyday editor features of the packaged extension in code-server, driven with Playwright
// in headless Chromium the way a user works, in a multi-root workspace (.code-workspace with two
// folders; the workspace targets 5.10-7.x, folder b sets its own 6.1+):
//   - diagnostics appear (the squiggle; the Problems count in the status bar);
//   - Select Target Kernels from the Command Palette, its list driven by typing a preset's name:
//     the target in the language status and the number of problems change;
//   - a file of folder b shows folder b's target in the language status;
//   - "ebpfPortability.targetKernels": "banana" in folder a's settings.json is squiggled there by
//     the settings schema, and the language status says "settings problem";
//   - the code lens above the program opens the Portability Report webview, whose grid is shown;
//   - Restart Server: the language status is busy (restarting; too short to read its hover) and then
//     says "server running", and the diagnostics come back.
// Screenshots go to $SHOTS, else <editor cache>/screenshots (printed at the end);
// scripts/editor/readme-shots.mjs makes the README's images from them.
//
// Without the editor install or the .vsix it prints "skipped: <reason>" and exits 0, unless CI
// is set, where either is a failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installExtension, launchChromium, prepareUserData, startCodeServer } from './lib/code-server.mjs';
import { CACHE, missingForCodeServer } from './lib/install.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const vsix = path.join(root, 'ebpf-portability.vsix');

function skipOrFail(reason) {
  if (process.env.CI) {
    console.error(`ui-everyday: ${reason}`);
    process.exit(1);
  }
  console.log(`skipped: ${reason}`);
  process.exit(0);
}
const missing = missingForCodeServer();
if (missing.length) skipOrFail(`the editor install is absent (${missing.join(', ')}); run scripts/editor/setup.sh`);
if (!fs.existsSync(vsix)) skipOrFail('ebpf-portability.vsix is missing; run npm run package');

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
}

const run = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-ui-everyday-'));
const shots = process.env.SHOTS || path.join(CACHE, 'screenshots');
fs.mkdirSync(shots, { recursive: true });
const dirs = { userDataDir: path.join(run, 'user-data'), extensionsDir: path.join(run, 'extensions') };
const a = path.join(run, 'kernel-a');
const b = path.join(run, 'kernel-b');
for (const d of [a, b]) fs.mkdirSync(path.join(d, '.vscode'), { recursive: true });
fs.copyFileSync(path.join(root, 'examples', 'process-tracer.bpf.c'), path.join(a, 'process-tracer.bpf.c'));
fs.copyFileSync(path.join(root, 'examples', 'task-flavors.bpf.c'), path.join(b, 'task-flavors.bpf.c'));
const settingsA = path.join(a, '.vscode', 'settings.json');
fs.writeFileSync(settingsA, '{}\n');
fs.writeFileSync(path.join(b, '.vscode', 'settings.json'), JSON.stringify({ 'ebpfPortability.targetKernels': '6.1+' }, null, 2));
const workspaceFile = path.join(run, 'fleet.code-workspace');
fs.writeFileSync(
  workspaceFile,
  JSON.stringify(
    { folders: [{ path: 'kernel-a' }, { path: 'kernel-b' }], settings: { 'ebpfPortability.targetKernels': '5.10-7.x' } },
    null,
    2,
  ),
);
prepareUserData(dirs.userDataDir, { 'workbench.editor.enablePreview': false });

let cs;
let browser;
let page;
const shot = (name) => page.screenshot({ path: path.join(shots, `everyday-${name}.png`) });

/** The language status hover's text (the item's text and detail), opened by hovering its entry. */
async function languageStatus() {
  await page.mouse.move(5, 5);
  await page.locator('.statusbar-item[id$="status.languageStatus"]').first().hover();
  return page
    .waitForFunction(() => document.querySelector('.hover-language-status')?.textContent ?? '', null, { timeout: 10_000 })
    .then(
      (h) => h.jsonValue(),
      () => '',
    );
}

/** Waits until the language status satisfies `pred` (hovering again while it does not). */
async function statusUntil(pred, ms = 30_000) {
  const end = Date.now() + ms;
  let last = '';
  while (Date.now() < end) {
    last = String(await languageStatus());
    if (pred(last)) return last;
    await page.waitForTimeout(300);
  }
  return last;
}

/** The number of errors a Problems entry's label says ("Errors: 2, Warnings: 0", "2 errors", "No Problems"). */
const errorsIn = (label) => Number(/(\d+)\s+errors?|errors?:?\s*(\d+)/i.exec(label)?.slice(1).find(Boolean) ?? 0);
/** Waits until the Problems entry's error count is `op` ('>' or '===') `arg`. */
const errorsUntil = (op, arg) =>
  page
    .waitForFunction(
      ([p, a]) => {
        const label = document.querySelector('[id="status.problems"]')?.getAttribute('aria-label') ?? '';
        const n = Number(/(\d+)\s+errors?|errors?:?\s*(\d+)/i.exec(label)?.slice(1).find(Boolean) ?? 0);
        return p === '>' ? n > a : n === a;
      },
      [op, arg],
    )
    .then(
      () => true,
      () => false,
    );

/** The Problems entry of the status bar: its errors. */
async function problemCount() {
  const label = (await page.locator('.statusbar-item[id="status.problems"]').first().getAttribute('aria-label')) ?? '';
  return { errors: errorsIn(label), label };
}

async function runCommand(title) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget input');
  await page.keyboard.type(title);
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.textContent.includes(t)),
    title.replace(/^eBPF Portability: /, ''),
  );
  await page.keyboard.press('Enter');
}

async function quickOpen(name, marker) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+P');
  await page.waitForSelector('.quick-input-widget input');
  await page.keyboard.type(name);
  // The list shows recently opened files first: wait for the search's own row.
  const base = name.split('/').pop();
  const folder = name.includes('/') ? name.split('/')[0] : '';
  await page.waitForFunction(
    ([f, n]) => {
      const row =
        document.querySelector('.quick-input-list .monaco-list-row.focused') ??
        document.querySelector('.quick-input-list .monaco-list-row');
      const text = row?.getAttribute('aria-label') ?? row?.textContent ?? '';
      return text.includes(n) && text.includes(f);
    },
    [folder, base],
  );
  await page.keyboard.press('Enter');
  await page.waitForFunction(
    (m) => [...document.querySelectorAll('.monaco-editor .view-lines')].some((e) => e.textContent.replace(/\u00a0/g, ' ').includes(m)),
    marker,
  );
}

try {
  await installExtension(dirs, vsix);
  console.log(`[${elapsed()}] installed ${path.basename(vsix)}`);
  cs = await startCodeServer(dirs, { folder: workspaceFile });
  browser = await launchChromium(path.join(run, 'chromium-profile'));
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(30_000);
  await page.goto(`${cs.url}?workspace=${encodeURIComponent(workspaceFile)}`);
  await page.waitForSelector('.monaco-workbench .part.editor', { timeout: 60_000 });
  await page.waitForTimeout(1500);
  console.log(`[${elapsed()}] workbench visible`);

  // 1. Diagnostics.
  await quickOpen('process-tracer.bpf.c', 'real_parent');
  await page.waitForSelector('.monaco-editor .squiggly-error', { timeout: 60_000 });
  await errorsUntil('>', 0);
  const narrow = await problemCount();
  check('diagnostics appear (squiggle, Problems count)', narrow.errors > 0, narrow.label);
  const first = await statusUntil((s) => /kernels/.test(s));
  check('the language status shows the workspace target', /eBPF 5\.10-7\.x .*· \d+ kernels/.test(first), JSON.stringify(first));
  await shot('1-diagnostics');

  // 2. Select Target Kernels through its list: typing filters the presets, Enter picks one.
  await runCommand('eBPF Portability: Select Target Kernels');
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.quick-input-list .monaco-list-row')].some((r) => r.textContent.includes('Ring buffer era')),
  );
  await page.keyboard.type('All LTS');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('.quick-input-list .monaco-list-row')];
    return rows.length === 1 && rows[0].textContent.includes('All LTS and newer kernels');
  });
  await shot('2-select-target');
  await page.keyboard.press('Enter');
  const wide = await statusUntil((s) => /eBPF 4\.14-7\.x/.test(s));
  check('the quick pick changes the target in the language status', /eBPF 4\.14-7\.x/.test(wide), JSON.stringify(wide));
  const more = await errorsUntil('>', narrow.errors);
  check('the findings change with the target (more errors on 4.14-7.x)', more, `${narrow.errors} → ${(await problemCount()).errors}`);
  const ws = JSON.parse(fs.readFileSync(workspaceFile, 'utf8'));
  check(
    'the target is written to the workspace file',
    ws.settings?.['ebpfPortability.targetKernels'] === '4.14-7.x',
    JSON.stringify(ws.settings),
  );

  // 3. A file of folder b: the folder's own target.
  await quickOpen('task-flavors.bpf.c', 'task_struct');
  const folderB = await statusUntil((s) => /eBPF 6\.1\+/.test(s));
  check("a file of folder b shows the folder's target", /eBPF 6\.1\+ .*· \d+ kernels/.test(folderB), JSON.stringify(folderB));
  await shot('3-folder-target');

  // 4. An invalid setting in folder a: the schema squiggles it; the status says so.
  fs.writeFileSync(settingsA, '{\n  "ebpfPortability.targetKernels": "banana"\n}\n');
  // Quick Open leaves .vscode out: the Explorer opens folder a's settings.json.
  await page.keyboard.press('Escape');
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: '.vscode' }).first().click();
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'settings.json' }).first().click();
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.monaco-editor .view-lines')].some((e) => e.textContent.includes('banana')),
  );
  const squiggled = await page
    .waitForSelector('.monaco-editor .squiggly-warning, .monaco-editor .squiggly-error', { timeout: 15_000 })
    .then(
      () => true,
      () => false,
    );
  check('"banana" is squiggled in settings.json by the schema', squiggled);
  const squiggle = page.locator('.monaco-editor .squiggly-warning, .monaco-editor .squiggly-error').first();
  const box = await squiggle.boundingBox();
  if (box) await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const schemaProblem = await page
    .waitForFunction(() => (document.querySelector('.monaco-hover')?.textContent ?? '').includes('A range (4.14-7.x, 5.8+)'), null, {
      timeout: 10_000,
    })
    .then(
      () => true,
      () => false,
    );
  check("its hover gives the setting's pattern message", schemaProblem);
  await shot('4-invalid-setting');
  await quickOpen('process-tracer.bpf.c', 'real_parent');
  const bad = await statusUntil((s) => /settings problem/.test(s));
  check('the language status says there is a settings problem', /settings problem: .*banana/.test(bad), JSON.stringify(bad));
  fs.writeFileSync(settingsA, '{}\n');
  await statusUntil((s) => /server running/.test(s) && /eBPF 4\.14-7\.x/.test(s));

  // 5. The code lens opens the report; its grid shows.
  await page.mouse.move(5, 5);
  await page.keyboard.press('Escape');
  const lens = page.locator('.contentWidgets .codelens-decoration a', { hasText: 'loads on' }).first();
  await lens.waitFor({ timeout: 30_000 });
  const lensText = await lens.innerText();
  check(
    'a code lens above the program says where it loads',
    /loads on \d+\/\d+ target kernels · needs ≥/.test(lensText),
    JSON.stringify(lensText),
  );
  await lens.click();
  let grid;
  for (let i = 0; i < 60 && !grid; i++) {
    for (const f of page.frames()) {
      const n = await f
        .locator('table.grid td.cell')
        .count()
        .catch(() => 0);
      if (n > 0) grid = { frame: f, n };
    }
    if (!grid) await page.waitForTimeout(500);
  }
  check('the report webview shows the programs × kernels grid', !!grid, grid ? `${grid.n} cells` : 'no grid');
  if (grid) {
    const fails = await grid.frame.locator('table.grid td.cell.fails').count();
    check('the grid has failing cells on 4.14-7.x (the ring buffer before 5.8)', fails > 0, `${fails} failing`);
    const label = await grid.frame.locator('table.grid td.cell').first().getAttribute('aria-label');
    check('each cell names its program, kernel and outcome', / on .+: (loads|fails|unknown)/.test(label ?? ''), JSON.stringify(label));
  }
  await page.waitForTimeout(500);
  await shot('5-report');

  // 6. Restart Server: restarting, then running, and the diagnostics come back.
  await quickOpen('process-tracer.bpf.c', 'real_parent');
  const before = await problemCount();
  // A restarting server makes the item busy: the status bar's language entry spins until it runs.
  await page.mouse.move(5, 5);
  const spinning = () =>
    !!document.querySelector(
      '.statusbar-item[id$="status.languageStatus"] .codicon-modifier-spin, .statusbar-item[id$="status.languageStatus"] [class*="~spin"]',
    );
  const busy = page.waitForFunction(spinning, null, { polling: 'raf', timeout: 20_000 }).then(
    () => true,
    () => false,
  );
  await runCommand('eBPF Portability: Restart Server');
  check('the language status is busy while the server restarts', await busy);
  await shot('6-restarting');
  const running = await statusUntil((s) => /server running/.test(s), 60_000);
  check('then that it runs again', /server running/.test(running), JSON.stringify(running));
  const back = await errorsUntil('===', before.errors);
  check('the diagnostics come back after the restart', back, `${before.errors} errors before, ${(await problemCount()).errors} after`);
  await shot('6-restarted');
} catch (e) {
  failed++;
  console.error(`ui-everyday: ${e.message}`);
  await page?.screenshot({ path: path.join(shots, 'everyday-error.png') }).catch(() => undefined);
} finally {
  try {
    await browser?.close();
  } catch {
    // The browser already went away.
  }
  cs?.stop();
  fs.rmSync(run, { recursive: true, force: true });
}
console.log(`ui-everyday: screenshots in ${shots}`);
console.log(`ui-everyday: finished in ${elapsed()}`);
console.log(`ui-everyday: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
