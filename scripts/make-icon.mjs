// Draws the extension's icon (images/icon.png, 128×128 RGBA): an amber hexagon — a honeycomb cell
// for eBPF's bee — on a dark rounded square, with a check mark for "loads on every target".
// Run with `node scripts/make-icon.mjs`; the PNG is written by hand (zlib + CRC-32), no packages.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

const N = 128;
const S = 4; // samples per axis per pixel, for smooth edges

/** Coverage of a shape at a pixel, by supersampling. */
const cover = (inside, x, y) => {
  let n = 0;
  for (let i = 0; i < S; i++) for (let j = 0; j < S; j++) if (inside(x + (i + 0.5) / S, y + (j + 0.5) / S)) n++;
  return n / (S * S);
};

const roundedSquare = (x, y) => {
  const r = 22;
  const cx = Math.min(Math.max(x, r), N - r);
  const cy = Math.min(Math.max(y, r), N - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
};

// A flat-topped hexagon centred in the square.
const hexagon = (x, y) => {
  const dx = Math.abs(x - 64);
  const dy = Math.abs(y - 64);
  const R = 46;
  return dy <= (R * Math.sqrt(3)) / 2 && dx <= R - dy / Math.sqrt(3);
};

/** Distance from (x, y) to the segment a–b. */
const segment = (x, y, [ax, ay], [bx, by]) => {
  const t = Math.max(0, Math.min(1, ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)));
  return Math.hypot(x - (ax + t * (bx - ax)), y - (ay + t * (by - ay)));
};
const check = (x, y) => Math.min(segment(x, y, [42, 66], [57, 81]), segment(x, y, [57, 81], [87, 48])) <= 7;

const blend = (under, over, a) => under.map((c, i) => Math.round(c * (1 - a) + over[i] * a));

const rows = [];
for (let y = 0; y < N; y++) {
  const row = [0]; // filter type: none
  for (let x = 0; x < N; x++) {
    const bg = cover(roundedSquare, x, y);
    let rgb = [24, 32, 48];
    rgb = blend(rgb, [245, 166, 35], cover(hexagon, x, y));
    rgb = blend(rgb, [255, 255, 255], cover(check, x, y));
    row.push(...rgb, Math.round(bg * 255));
  }
  rows.push(Buffer.from(row));
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (buf) => {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
};
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(N, 0);
ihdr.writeUInt32BE(N, 4);
ihdr[8] = 8; // bit depth
ihdr[9] = 6; // RGBA
const png = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  chunk('IHDR', ihdr),
  chunk('IDAT', deflateSync(Buffer.concat(rows), { level: 9 })),
  chunk('IEND', Buffer.alloc(0)),
]);
const out = join(import.meta.dirname, '..', 'images', 'icon.png');
mkdirSync(join(out, '..'), { recursive: true });
writeFileSync(out, png);
console.log(`make-icon: ${out} (${png.length} bytes)`);
