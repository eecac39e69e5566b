// Starts code-server (VS Code 1.139 as a server plus its web workbench) and headless Chromium for
// the editor tests. Each run gets its own config file, TMPDIR and browser profile so that nothing
// is written to the home directory and parallel runs cannot share state.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, CODE_SERVER, NODE24, requireTool } from './install.mjs';

/**
 * User settings that keep the workbench quiet and deterministic: no welcome page, trust prompt,
 * update checks, telemetry, AI panels or git sockets, which would otherwise race with the tests.
 */
export const QUIET_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'editor.hover.delay': 100,
  'files.autoSave': 'off',
  'git.enabled': false,
};

/** Writes QUIET_SETTINGS (under any settings already there) into a user-data dir. */
export function prepareUserData(userDataDir, extra = {}) {
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  const file = path.join(userDataDir, 'User', 'settings.json');
  const current = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8') || '{}') : {};
  fs.writeFileSync(file, JSON.stringify({ ...QUIET_SETTINGS, ...current, ...extra }, null, 2));
}

/** Finds a free TCP port on the loopback interface. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// An explicit --config keeps code-server from creating ~/.config/code-server/config.yaml.
function configArgs(dirs) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-cs-config-'));
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, 'auth: none\ncert: false\n');
  const args = ['--config', file, '--user-data-dir', dirs.userDataDir, '--extensions-dir', dirs.extensionsDir];
  return { args, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Installs a .vsix into an extensions dir with code-server's own CLI. */
export function installExtension(dirs, vsix) {
  return new Promise((resolve, reject) => {
    const cfg = configArgs(dirs);
    const proc = spawn(NODE24, [CODE_SERVER, ...cfg.args, '--install-extension', vsix, '--force'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    proc.on('exit', (code) => {
      cfg.cleanup();
      if (code === 0) resolve(out);
      else reject(new Error(`code-server --install-extension exited with ${code}\n${out}`));
    });
  });
}

/**
 * Starts code-server on 127.0.0.1 with auth none and resolves once it listens.
 * `extensionTests` adds `--vscode-option enable-smoke-test-driver`: without it the built web
 * workbench ignores the extensionDevelopmentPath / extensionTestsPath keys of its ?payload=.
 */
export async function startCodeServer(dirs, { folder, verbose = false, extensionTests = false } = {}) {
  fs.mkdirSync(dirs.userDataDir, { recursive: true });
  fs.mkdirSync(dirs.extensionsDir, { recursive: true });
  const port = await freePort();
  const cfg = configArgs(dirs);
  const args = [
    CODE_SERVER,
    ...cfg.args,
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
  ];
  if (verbose) args.push('--log', 'trace');
  if (extensionTests) args.push('--vscode-option', 'enable-smoke-test-driver');
  if (folder) args.push(folder);
  // The VS Code server leaves vscode-ipc-*.sock and similar files in the temp dir; a private
  // TMPDIR, removed on stop, keeps /tmp clean.
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebpf-cs-tmp-'));
  // A process group of its own lets stop() end code-server together with its extension hosts
  // and the language servers they started.
  const proc = spawn(NODE24, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, TMPDIR: tmpDir } });
  let log = '';
  const onData = (d) => {
    log += d;
    if (verbose) process.stderr.write(d);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const stop = () => {
    try {
      process.kill(-proc.pid, 'SIGTERM');
    } catch {
      // The group is already gone.
    }
    cfg.cleanup();
    fs.rmSync(tmpDir, { recursive: true, force: true });
  };
  try {
    await new Promise((resolve, reject) => {
      const poll = setInterval(() => {
        if (/HTTP server listening/.test(log)) {
          clearInterval(poll);
          clearTimeout(limit);
          resolve();
        }
      }, 50);
      const limit = setTimeout(() => {
        clearInterval(poll);
        reject(new Error(`code-server did not listen within 60 s\n${log}`));
      }, 60_000);
      proc.on('exit', (code) => {
        clearInterval(poll);
        clearTimeout(limit);
        reject(new Error(`code-server exited with ${code}\n${log}`));
      });
    });
  } catch (e) {
    stop();
    throw e;
  }
  return { port, host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}/`, log: () => log, stop };
}

/** Launches headless Debian Chromium with a fresh profile in `profileDir`. */
export async function launchChromium(profileDir, viewport = { width: 1400, height: 900 }) {
  const { chromium } = requireTool('playwright-core');
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    // Playwright's own signal handlers would close the browser but leave this process running;
    // the callers clean up code-server and the browser themselves.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    // Chromium writes "Crash Reports" under $XDG_CONFIG_HOME even with its own profile dir.
    env: { ...process.env, XDG_CONFIG_HOME: path.join(profileDir, 'xdg-config'), XDG_CACHE_HOME: path.join(profileDir, 'xdg-cache') },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport,
  });
}
