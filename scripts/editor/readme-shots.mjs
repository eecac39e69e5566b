#!/usr/bin/env node
// Makes the README's editor screenshots from those test/editor/ui-everyday.mjs took: each chosen
// PNG is quantised with pngquant (scripts/editor/setup.sh installs it) into docs/images/, and
// must come out under 150 KB. Usage: node scripts/editor/readme-shots.mjs [SHOTS_DIR]
// (default: $SHOTS, else the editor cache's screenshots folder, where the test writes them).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CACHE } from '../../test/editor/lib/install.mjs';

const root = path.resolve(import.meta.dirname, '..', '..');
const from = process.argv[2] || process.env.SHOTS || path.join(CACHE, 'screenshots');
const out = path.join(root, 'docs', 'images');
const LIMIT = 150 * 1024;
/** Test screenshot → README image. */
const CHOSEN = {
  'everyday-1-diagnostics.png': 'editor-diagnostics.png',
  'everyday-2-select-target.png': 'editor-select-target.png',
  'everyday-5-report.png': 'editor-report.png',
};

fs.mkdirSync(out, { recursive: true });
let failed = false;
for (const [shot, image] of Object.entries(CHOSEN)) {
  const src = path.join(from, shot);
  if (!fs.existsSync(src)) {
    console.error(`readme-shots: ${src} is missing; run node test/editor/ui-everyday.mjs first`);
    failed = true;
    continue;
  }
  const dest = path.join(out, image);
  // Fewer colours until it fits: UI screenshots have few, so 64 is usually plenty.
  for (const colours of [64, 32, 16]) {
    execFileSync('pngquant', ['--force', '--speed', '1', '--strip', '--output', dest, String(colours), src]);
    if (fs.statSync(dest).size < LIMIT) break;
  }
  const size = fs.statSync(dest).size;
  console.log(`${path.relative(root, dest)}: ${(size / 1024).toFixed(0)} KB (from ${shot})`);
  if (size >= LIMIT) {
    console.error(`readme-shots: ${image} is ${size} bytes, over ${LIMIT}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
