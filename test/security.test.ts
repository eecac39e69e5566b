/**
 * What the server and the CLI may execute and connect to (README "Security"). The sources bundled
 * into dist/server.js (the launcher), dist/server-bundle.js (the server it runs) and dist/cli.js
 * are scanned for child processes and network modules, and compared with an allowlist that says
 * why each is there; the bundles themselves are scanned for the modules they load and the
 * child-process calls they contain (libraries included). A new spawn site, a network module or
 * `fetch` fails here until it is reviewed and listed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..');
/** Everything the two bundles are built from (the CLI's `verify` brings in the ground truth). */
const SOURCE_DIRS = ['server/src', 'cli/src', 'kernel-db/src', 'groundtruth/src'];

/** Files that start processes, with at most how many call sites, and why. */
const SPAWN_SITES: Readonly<Record<string, { readonly calls: number; readonly why: string }>> = {
  'server/src/driver/compile.ts': {
    calls: 2,
    why: 'the object pass: the clang the user configured (or clang from an absolute PATH entry), its version and the compile',
  },
  'groundtruth/src/host.ts': {
    calls: 3,
    why: '`verify` / the kernel matrix: host tools, and apt-get for QEMU when the user runs it as root',
  },
  'groundtruth/src/bzimage.ts': { calls: 1, why: '`verify`: a decompressor for a kernel image' },
  'groundtruth/src/guest.ts': { calls: 1, why: '`verify`: building the guest image' },
  'groundtruth/src/compile.ts': { calls: 2, why: '`verify`: bpftool (vmlinux.h) and clang for the program the user names' },
  'groundtruth/src/qemu.ts': { calls: 1, why: '`verify`: QEMU booting the kernels' },
};

const NETWORK = /^(node:)?(net|http|https|http2|dgram|tls|dns|undici)$/;
const CHILD = /^(node:)?child_process$/;
const CALLS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'];

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const p = join(dir, name);
      if (statSync(join(root, p)).isDirectory()) walk(p);
      else if (/\.(ts|mts|cts|js|mjs)$/.test(name)) out.push(p);
    }
  };
  for (const d of SOURCE_DIRS) walk(d);
  return out;
}

/** The modules a source imports (static and dynamic imports, require), with the names it binds. */
function importsOf(text: string): Array<{ module: string; names: string[] }> {
  const out: Array<{ module: string; names: string[] }> = [];
  for (const m of text.matchAll(/import\s+(type\s+)?([^'"]*?)\s*from\s*['"]([^'"]+)['"]/g)) {
    if (m[1]) continue;
    const names: string[] = [];
    const braces = /\{([^}]*)\}/.exec(m[2]);
    if (braces)
      for (const part of braces[1].split(',')) {
        const p = part.trim();
        if (!p || p.startsWith('type ')) continue;
        const as = /^(\w+)\s+as\s+(\w+)$/.exec(p);
        names.push(as ? as[2] : p);
      }
    const ns = /\*\s+as\s+(\w+)/.exec(m[2]) ?? /^(\w+)/.exec(m[2].trim());
    if (ns) names.push(`${ns[1]}.`);
    out.push({ module: m[3], names });
  }
  for (const m of text.matchAll(/\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push({ module: m[1], names: [] });
  return out;
}

/** The code without comments and string literals (a message may say "fetch (" or "spawn("). */
function withoutCommentsAndStrings(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`/g, '""');
}

/** Call sites of child_process functions bound by `names` (`spawn(…)`, or `cp.spawn(…)` for a namespace `cp.`). */
function spawnCalls(text: string, names: readonly string[]): number {
  let n = 0;
  const code = withoutCommentsAndStrings(text);
  for (const name of names) {
    const re = name.endsWith('.')
      ? new RegExp(`\\b${name.slice(0, -1)}\\.(${CALLS.join('|')})\\s*\\(`, 'g')
      : new RegExp(`(?<![.\\w])${name}\\s*\\(`, 'g');
    n += [...code.matchAll(re)].length;
  }
  return n;
}

test('the sources import no network module, call no fetch, and start processes only where the allowlist says', () => {
  const found: Record<string, number> = {};
  for (const file of sources()) {
    const text = readFileSync(join(root, file), 'utf8');
    const imports = importsOf(text);
    for (const i of imports)
      assert.ok(!NETWORK.test(i.module), `${file} imports ${i.module}: the server and CLI open no network connection`);
    assert.doesNotMatch(withoutCommentsAndStrings(text), /\bfetch\s*\(|\bWebSocket\b|\bXMLHttpRequest\b/, `${file}: a network request`);
    const child = imports.filter((i) => CHILD.test(i.module));
    if (!child.length) continue;
    const names = child.flatMap((i) => i.names.filter((n) => n.endsWith('.') || CALLS.includes(n)));
    assert.ok(
      names.length > 0 || child.every((i) => i.names.length > 0),
      `${file}: child_process required without names (a dynamic import hides its calls)`,
    );
    found[file] = spawnCalls(text, names);
  }
  for (const [file, calls] of Object.entries(found)) {
    const allowed = SPAWN_SITES[file];
    assert.ok(allowed, `${file} starts processes (${calls} call sites) and is not in the allowlist: review it and add it with why`);
    assert.ok(calls <= allowed.calls, `${file}: ${calls} call sites starting processes, ${allowed.calls} allowed (${allowed.why})`);
  }
  assert.ok(found['server/src/driver/compile.ts'] === 2, 'the scan sees the object pass');
});

test('the scan itself: imports, namespaces and renamed bindings are seen', () => {
  const text = [
    "import { spawn as run, type SpawnOptions } from 'node:child_process';",
    "import * as cp from 'child_process';",
    "import https from 'node:https';",
    "const x = require('net');",
    'run("a"); cp.execFile("b"); other.spawn("c"); // spawn("d")',
  ].join('\n');
  const imports = importsOf(text);
  assert.deepEqual(
    imports.map((i) => i.module),
    ['node:child_process', 'child_process', 'node:https', 'net'],
  );
  assert.ok(imports.some((i) => NETWORK.test(i.module)));
  assert.equal(spawnCalls(text, ['run', 'cp.']), 2);
});

/** Built-in modules a bundle requires. */
function requiredModules(bundle: string): Set<string> {
  return new Set([...bundle.matchAll(/require\("([^"./][^"]*)"\)/g)].map((m) => m[1].replace(/^node:/, '')));
}

/** Child-process calls in a bundle (esbuild keeps the imported names: `(0,x.spawnSync)(`). */
function bundleCalls(bundle: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of bundle.matchAll(new RegExp(`\\.(${CALLS.join('|')})\\)\\(`, 'g'))) out[m[1]] = (out[m[1]] ?? 0) + 1;
  return out;
}

test('the bundles: no network module, child processes only from the allowlisted sites', () => {
  for (const f of ['server.js', 'server-bundle.js', 'cli.js'])
    assert.ok(existsSync(join(root, 'dist', f)), `dist/${f} is missing: run \`npm run build\` (npm test does)`);
  // The launcher and the bundle it runs, as one.
  const server = readFileSync(join(root, 'dist', 'server.js'), 'utf8') + readFileSync(join(root, 'dist', 'server-bundle.js'), 'utf8');
  const cli = readFileSync(join(root, 'dist', 'cli.js'), 'utf8');
  for (const [name, bundle] of [
    ['server.js', server],
    ['cli.js', cli],
  ] as const) {
    const network = [...requiredModules(bundle)].filter((m) => NETWORK.test(m));
    // The server speaks LSP over standard input and output or Node's IPC channel only
    // (server/src/lsp/connection.ts): no socket, no pipe, no network module.
    assert.deepEqual(network, [], `${name} loads ${network.join(', ')}`);
  }
  // The server: the object pass's compile, and nothing else.
  assert.deepEqual(bundleCalls(server), { spawn: 1 });
  // The CLI: the object pass and `verify` (the allowlisted sources above, and nothing else).
  assert.deepEqual(bundleCalls(cli), { spawn: 3, spawnSync: 7 });
});
