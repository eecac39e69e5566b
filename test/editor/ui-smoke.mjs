#!/usr/bin/env node
// A UI smoke test of the packaged extension in code-server, driven with Playwright in headless
// Chromium the way a user works: install ebpf-portability.vsix (npm run package), open
// process-tracer.bpf.c with Quick Open, see the squiggle, its hover and the Problems entry, apply
// the quick fix with Ctrl+. and Enter, and see the text change. Screenshots go to a temp dir whose
// path is printed (SHOTS=DIR chooses it). It checks the .vsix, not dist/: a file left out of the
// package fails here even when the extension-host tests pass.
//
// Without the editor install or the .vsix it prints "skipped: <reason>" and exits 0, unless CI
// is set, where either is a failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installExtension, launchChromium, prepareUserData, startCodeServer } from './lib/code-server.mjs';
import { missingForCodeServer } from './lib/install.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const vsix = path.join(root, 'ebpf-portability.vsix');

function skipOrFail(reason) {
  if (process.env.CI) {
    console.error(`ui: ${reason}`);
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

const run = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-ui-'));
const shots = process.env.SHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-ui-shots-'));
fs.mkdirSync(shots, { recursive: true });
const dirs = { userDataDir: path.join(run, 'user-data'), extensionsDir: path.join(run, 'extensions') };
const workspace = path.join(run, 'workspace');
fs.mkdirSync(workspace);
fs.copyFileSync(path.join(root, 'examples', 'process-tracer.bpf.c'), path.join(workspace, 'process-tracer.bpf.c'));
// Kernels from 5.10 have ring buffers and tp_btf, so the example's only problems are its two
// direct reads: the first squiggle, the hover and F8 then all point at them.
fs.mkdirSync(path.join(workspace, '.vscode'));
fs.writeFileSync(
  path.join(workspace, '.vscode', 'settings.json'),
  JSON.stringify({ 'ebpfPortability.targetKernels': '5.10-7.x' }, null, 2),
);
prepareUserData(dirs.userDataDir);

let cs;
let browser;
let page;
try {
  await installExtension(dirs, vsix);
  console.log(`[${elapsed()}] installed ${path.basename(vsix)}`);
  cs = await startCodeServer(dirs, { folder: workspace });
  browser = await launchChromium(path.join(run, 'chromium-profile'));
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(30_000);
  await page.goto(`${cs.url}?folder=${encodeURIComponent(workspace)}`);
  await page.waitForSelector('.monaco-workbench .part.editor', { timeout: 60_000 });
  console.log(`[${elapsed()}] workbench visible`);
  // Keybindings and the extension host connection are not ready the moment the editor part is.
  await page.waitForTimeout(1500);

  await page.keyboard.press('Control+P');
  await page.waitForSelector('.quick-input-widget input');
  await page.keyboard.type('process-tracer.bpf.c');
  await page.waitForSelector('.quick-input-list .monaco-list-row');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('.monaco-editor .view-lines')?.textContent.includes('real_parent'));
  // A tab's text splits the name at ".c"; its aria-label keeps it whole.
  const tab = await page.locator('.tab.active').first().getAttribute('aria-label');
  check('process-tracer.bpf.c opens from Quick Open', /process-tracer\.bpf\.c/.test(tab ?? ''), `active tab "${tab}"`);

  const squiggle = '.monaco-editor .squiggly-error, .monaco-editor .squiggly-warning';
  const opened = Date.now();
  await page.waitForSelector(squiggle, { timeout: 60_000 });
  check('the squiggle shows', true, `${Date.now() - opened} ms after the file opened, ${elapsed()} after start`);
  await page.screenshot({ path: path.join(shots, 'ui-1-squiggle.png') });

  // The hover widget is in the DOM before its content (and VS Code keeps hidden ones around), so
  // wait for the message itself in any hover. Code lenses arrive after the squiggles and move the
  // lines below them, so the squiggle is located again (once its place holds still) before each
  // of up to three tries.
  const message = /kprobe program may not dereference kernel pointers/;
  let hover = '';
  let tries = 0;
  for (; tries < 3 && !message.test(hover); tries++) {
    await page.mouse.move(5, 5);
    let box = await page.locator(squiggle).first().boundingBox();
    for (let settle = 0; settle < 10; settle++) {
      await page.waitForTimeout(300);
      const again = await page.locator(squiggle).first().boundingBox();
      if (again.x === box.x && again.y === box.y) break;
      box = again;
    }
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2, { steps: 4 });
    hover = await page
      .waitForFunction(
        (source) => {
          const texts = [...document.querySelectorAll('.monaco-hover')].map((e) => e.textContent ?? '');
          return texts.find((t) => new RegExp(source).test(t)) ?? false;
        },
        message.source,
        { timeout: 5_000 },
      )
      .then((handle) => handle.jsonValue())
      .catch(() => page.evaluate(() => [...document.querySelectorAll('.monaco-hover')].map((e) => e.textContent).join(' | ')));
  }
  const at = hover.search(message);
  check(
    'the hover shows the message',
    at >= 0,
    `${JSON.stringify(at >= 0 ? hover.slice(at, at + 80) : hover.slice(0, 200))} (hovered ${tries} time${tries === 1 ? '' : 's'})`,
  );
  await page.screenshot({ path: path.join(shots, 'ui-2-hover.png') });
  await page.mouse.move(5, 5);
  await page.keyboard.press('Escape');

  await page.keyboard.press('Control+Shift+M');
  await page.waitForSelector('.markers-panel .monaco-list-row', { timeout: 10_000 });
  const problems = await page.locator('.markers-panel').innerText();
  check(
    'the Problems view lists unsafe-kernel-deref from ebpf-portability',
    /unsafe-kernel-deref/.test(problems) && /ebpf-portability/.test(problems),
  );
  await page.screenshot({ path: path.join(shots, 'ui-3-problems.png') });

  // F8 puts the cursor on the first problem (the task->tgid read); Ctrl+. offers its fixes.
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('F8');
  await page.waitForTimeout(500);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+Period');
  await page.waitForSelector('.action-widget .monaco-list-row', { timeout: 10_000 });
  const menu = (await page.locator('.action-widget').first().innerText()).replace(/\s+/g, ' ').trim();
  check('Ctrl+. offers "Read with BPF_CORE_READ(task, tgid)"', menu.includes('Read with BPF_CORE_READ(task, tgid)'), JSON.stringify(menu));
  await page.screenshot({ path: path.join(shots, 'ui-4-quickfix.png') });
  await page.keyboard.press('Enter');
  // Monaco renders spaces as U+00A0, so the text is normalised before comparing.
  const fixed = await page
    .waitForFunction(
      () =>
        document
          .querySelector('.monaco-editor .view-lines')
          ?.textContent.replace(/\u00a0/g, ' ')
          .includes('e->pid = BPF_CORE_READ(task, tgid);'),
      null,
      { timeout: 10_000 },
    )
    .then(
      () => true,
      () => false,
    );
  check('Enter applies it: "e->pid = BPF_CORE_READ(task, tgid);"', fixed);
  // The server re-analyses the edit: the fixed read leaves the Problems view, the other stays.
  const republished = await page
    .waitForFunction(
      () => {
        const text = document.querySelector('.markers-panel')?.textContent ?? '';
        return !text.includes('`task->tgid` reads') && text.includes('`task->real_parent->tgid` reads');
      },
      null,
      { timeout: 10_000 },
    )
    .then(
      () => true,
      () => false,
    );
  check('the fixed problem leaves the Problems view, the other stays', republished);
  // The target is a language-status item: shown in the hover of the status bar's language entry.
  await page.locator('.statusbar-item[id$="status.languageStatus"]').first().hover();
  const status = await page
    .waitForFunction(() => document.querySelector('.hover-language-status')?.textContent ?? '', null, { timeout: 10_000 })
    .then(
      (h) => h.jsonValue(),
      () => '',
    );
  check('the language status shows the target kernels', String(status).includes('eBPF 5.10-7.x'), JSON.stringify(status));
  await page.screenshot({ path: path.join(shots, 'ui-5-fixed.png') });
} catch (e) {
  failed++;
  console.error(`ui: ${e.message}`);
  await page?.screenshot({ path: path.join(shots, 'ui-error.png') }).catch(() => undefined);
} finally {
  try {
    await browser?.close();
  } catch {
    // The browser already went away.
  }
  cs?.stop();
  fs.rmSync(run, { recursive: true, force: true });
}
console.log(`ui: screenshots in ${shots}`);
console.log(`ui: finished in ${elapsed()}`);
console.log(`ui: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
