#!/usr/bin/env node
// A stand-in "VS Code executable" for @vscode/test-electron's runTests({ vscodeExecutablePath }),
// because the VS Code desktop download and Electron are unreachable on the machines this project
// is tested on. It takes the arguments runTests passes to VS Code,
//   --extensionDevelopmentPath=P (repeatable)  --extensionTestsPath=P  --user-data-dir=D
//   --extensions-dir=D  [folder]  and Electron-only flags (ignored),
// and runs the tests for real in code-server, whose extension host is a real Node extension host
// (so the extension's IPC language server starts exactly as in desktop VS Code), with headless
// Chromium showing the workbench. The workbench gets the test paths in its ?payload=, the mechanism
// VS Code's own browser integration tests use; when the test runner finishes, the workbench calls
// window.codeAutomationExit(code) and the shim exits with that code.
//
// Env: EBPF_EDITOR_CACHE (see lib/install.mjs), SHIM_TIMEOUT_S (default 600), SHIM_VERBOSE=1
// (code-server's trace log and the browser console), SHIM_KEEP=1 (keep the temp dir),
// SHIM_SCREENSHOT=FILE.png (a screenshot of the workbench just before exit).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { format } from 'node:util';
import { launchChromium, prepareUserData, startCodeServer } from './lib/code-server.mjs';

// Workbench log lines that say nothing about the tests: connection set-up, the unreachable
// extension gallery and GitHub authentication, deprecation warnings of built-in extensions.
const NOISE =
  /^(Resolving connection token|Resolved connection token|Creating a socket|\[reconnection-grace-time\]|Updating additional builtin extensions cache|\[Service Worker\]|\[AgentHost|\[AccountPolicyGate\]|Timed out waiting for authentication provider|getaddrinfo ENOTFOUND|\[Extension Host\] \(node:\d+\) \[DEP)/;
const verbose = !!process.env.SHIM_VERBOSE;

const argv = process.argv.slice(2);
const devPaths = [];
let testsPath, userDataDir, extensionsDir, folder;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const value = (name) => (a.startsWith(`--${name}=`) ? a.slice(name.length + 3) : a === `--${name}` ? argv[++i] : undefined);
  let v;
  if ((v = value('extensionDevelopmentPath')) !== undefined) devPaths.push(path.resolve(v));
  else if ((v = value('extensionTestsPath')) !== undefined) testsPath = path.resolve(v);
  else if ((v = value('user-data-dir')) !== undefined) userDataDir = path.resolve(v);
  else if ((v = value('extensions-dir')) !== undefined) extensionsDir = path.resolve(v);
  else if (a === '--version') {
    // runTests may ask the "executable" for its version; answer like VS Code does.
    console.log('1.139.1\ncode-server-shim\nx64');
    process.exit(0);
  } else if (a.startsWith('-')) {
    // Electron and desktop-only flags (--no-sandbox, --disable-gpu-sandbox, --skip-welcome, ...)
    // mean nothing to code-server.
  } else if (!folder) folder = path.resolve(a);
}
if (!testsPath || devPaths.length === 0) {
  console.error('usage: vscode-test-shim.mjs --extensionDevelopmentPath=DIR --extensionTestsPath=FILE [FOLDER]');
  process.exit(2);
}

const run = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-vscode-shim-'));
userDataDir ||= path.join(run, 'user-data');
extensionsDir ||= path.join(run, 'extensions');
prepareUserData(userDataDir);

const timeoutS = Number(process.env.SHIM_TIMEOUT_S || 600);
let cs;
let browser;
let exitCode = 1;
const cleanup = async () => {
  try {
    await browser?.close();
  } catch {
    // The browser already went away.
  }
  cs?.stop();
  if (process.env.SHIM_KEEP) console.error(`[shim] kept ${run}`);
  else fs.rmSync(run, { recursive: true, force: true });
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, async () => {
    console.error(`[shim] ${sig}: stopping code-server and Chromium`);
    await cleanup();
    process.exit(130);
  });
}

const t0 = Date.now();
try {
  cs = await startCodeServer({ userDataDir, extensionsDir }, { verbose, extensionTests: true });
  const remote = (p) => `vscode-remote://${cs.host}${p.split(path.sep).join('/')}`;
  const payload = [
    ...devPaths.map((p) => ['extensionDevelopmentPath', remote(p)]),
    ['extensionTestsPath', remote(testsPath)],
    ['skipWelcome', 'true'],
  ];
  let url = `${cs.url}?payload=${encodeURIComponent(JSON.stringify(payload))}`;
  url += folder ? `&folder=${encodeURIComponent(folder)}` : '&ew=true';

  browser = await launchChromium(path.join(run, 'chromium-profile'));
  const page = browser.pages()[0] ?? (await browser.newPage());
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  // The workbench's log service calls this for every log line, including the extension host's
  // console output (mocha's reporter), as printf-style [format, ...args].
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const text = Array.isArray(args) ? format(...args) : String(args);
    if (!verbose && (type === 'trace' || type === 'debug' || NOISE.test(text))) return;
    (type === 'error' || type === 'warn' ? console.error : console.log)(text);
  });
  await page.exposeFunction('codeAutomationExit', (code) => finish(code));
  const timer = setTimeout(() => {
    console.error(`[shim] no result after ${timeoutS}s`);
    finish(124);
  }, timeoutS * 1000);
  if (verbose) {
    page.on('console', (msg) => console.error('[page]', msg.text()));
    page.on('pageerror', (e) => console.error('[pageerror]', e.message));
  }
  await page.goto(url);
  exitCode = await finished;
  clearTimeout(timer);
  if (process.env.SHIM_SCREENSHOT) await page.screenshot({ path: process.env.SHIM_SCREENSHOT }).catch(() => undefined);
} catch (e) {
  console.error(`[shim] ${e.message}`);
  exitCode = 1;
} finally {
  await cleanup();
}
console.error(`[shim] extension tests finished with code ${exitCode} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
process.exit(exitCode);
