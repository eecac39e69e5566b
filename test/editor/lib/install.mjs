// Where scripts/editor/setup.sh puts the real-editor tools, and whether they are all there.
// Every editor test resolves its tools through this file, so the layout is written down once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

/** The cache directory of setup.sh (outside the repository). */
export const CACHE = process.env.EBPF_EDITOR_CACHE || path.join(os.homedir(), '.cache', 'ebpf-portability-editor');
/** Node 24, which code-server 4.139 requires. */
export const NODE24 = path.join(CACHE, 'node24', 'package', 'bin', 'node');
/** code-server's entry point, run with NODE24. */
export const CODE_SERVER = path.join(CACHE, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
/** Debian's Chromium, the browser that shows the workbench. */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** The directory whose node_modules holds @vscode/test-electron, mocha and playwright-core. */
export const TOOLS = path.join(CACHE, 'tools');

/** Loads one of the test tools from the cache (they are not dependencies of the project). */
export const requireTool = createRequire(path.join(TOOLS, 'package.json'));

/** Lists what is missing for the code-server tests; empty when everything is installed. */
export function missingForCodeServer() {
  const missing = [];
  if (!fs.existsSync(NODE24)) missing.push(`Node 24 (${NODE24})`);
  if (!fs.existsSync(CODE_SERVER)) missing.push(`code-server (${CODE_SERVER})`);
  if (!fs.existsSync(CHROMIUM)) missing.push(`chromium (${CHROMIUM})`);
  for (const tool of ['@vscode/test-electron', 'mocha', 'playwright-core']) {
    // The package.json path is checked directly: a package's "exports" may hide it from require.
    if (!fs.existsSync(path.join(TOOLS, 'node_modules', tool, 'package.json'))) missing.push(`${tool} (in ${TOOLS})`);
  }
  return missing;
}
