#!/usr/bin/env node
'use strict';
// Draws models/sample.png, the frame `npm start` runs on: a synthetic scene with structure at several
// scales (sky gradient, hills, textured shapes, a checkerboard floor in perspective). Made by code,
// deterministically, so the package ships no third-party photo.
// Usage: node scripts/make-sample.js [out.png]
const path = require('node:path');
const sharp = require('sharp');

const W = 512;
const H = 384;
const SS = 2; // rendered at 2x and downsized, which anti-aliases the edges
const out = process.argv[2] || path.join(__dirname, '..', 'models', 'sample.png');

const w = W * SS;
const h = H * SS;
const horizon = 0.55 * h;
const rgb = new Uint8Array(w * h * 3);

// Deterministic value noise (hash of integer lattice points), for texture.
function hash(x, y) {
  let t = Math.imul(x, 374761393) + Math.imul(y, 668265263);
  t = Math.imul(t ^ (t >>> 13), 1274126177);
  return ((t ^ (t >>> 16)) >>> 0) / 4294967296;
}
function noise(x, y) {
  const xi = Math.floor(x);
  const yi = Math.floor(y);
  const fx = x - xi;
  const fy = y - yi;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const a = hash(xi, yi) + (hash(xi + 1, yi) - hash(xi, yi)) * sx;
  const b = hash(xi, yi + 1) + (hash(xi + 1, yi + 1) - hash(xi, yi + 1)) * sx;
  return a + (b - a) * sy;
}
const fbm = (x, y) => 0.5 * noise(x, y) + 0.3 * noise(2 * x, 2 * y) + 0.2 * noise(4 * x, 4 * y);
const mix = (a, b, t) => a.map((v, i) => v + (b[i] - v) * t);

function sky(x, y) {
  const t = y / horizon;
  let c = mix([40, 90, 180], [190, 215, 235], t);
  const sun = Math.hypot(x - 0.78 * w, y - 0.2 * h) / (0.06 * w);
  if (sun < 1) c = [255, 240, 190];
  else c = mix(c, [255, 230, 180], Math.max(0, 0.5 - 0.1 * sun));
  const cloud = fbm(x / 90, y / 30) - 0.55;
  return cloud > 0 ? mix(c, [250, 250, 250], Math.min(1, cloud * 4) * (1 - t)) : c;
}

function hills(x, y) {
  const ridge = horizon - 0.12 * h * (0.6 + 0.4 * Math.sin(x / 95) * Math.cos(x / 41)) - 12 * fbm(x / 30, 0);
  if (y < ridge) return null;
  const shade = 0.6 + 0.4 * fbm(x / 12, y / 12);
  return [60 * shade, 110 * shade, 70 * shade];
}

function floor(x, y) {
  // Ground plane seen by a camera 1 unit up: depth grows as rows near the horizon.
  const z = (0.5 * h) / (y - horizon + 1e-3);
  const X = ((x - w / 2) * z) / (0.5 * h);
  const check = (Math.floor(X * 1.5) + Math.floor(z * 1.5)) & 1;
  const c = check ? [225, 215, 195] : [70, 55, 50];
  return mix(c, [170, 190, 210], Math.min(1, z / 14)); // haze toward the horizon
}

// Shapes, drawn last over first: [inside(x, y) -> colour or null]
const shapes = [
  (x, y) => { // striped red disc
    const r = Math.hypot(x - 0.28 * w, y - 0.52 * h);
    if (r > 0.14 * w) return null;
    return Math.floor((x + y) / 14) & 1 ? [200, 40, 40] : [240, 160, 60];
  },
  (x, y) => { // green triangle with noise texture
    const u = (x - 0.42 * w) / (0.22 * w);
    const v = (y - 0.35 * h) / (0.45 * h);
    if (v < 0 || v > 1 || Math.abs(u - 0.5) > v / 2) return null;
    const n = fbm(x / 6, y / 6);
    return [40 + 60 * n, 150 + 80 * n, 60];
  },
  (x, y) => { // blue box with a grid of small squares
    if (x < 0.6 * w || x > 0.85 * w || y < 0.5 * h || y > 0.82 * h) return null;
    const gx = (x - 0.6 * w) % 24;
    const gy = (y - 0.5 * h) % 24;
    return gx < 4 || gy < 4 ? [240, 240, 250] : [30, 60 + 40 * fbm(x / 20, y / 20), 150];
  },
  (x, y) => { // yellow ring
    const r = Math.hypot(x - 0.12 * w, y - 0.8 * h);
    return r > 0.05 * w && r < 0.08 * w ? [245, 210, 40] : null;
  },
];

for (let y = 0; y < h; y++) {
  for (let x = 0; x < w; x++) {
    let c = y < horizon ? hills(x, y) || sky(x, y) : floor(x, y);
    for (const shape of shapes) c = shape(x, y) || c;
    const o = (y * w + x) * 3;
    for (let k = 0; k < 3; k++) rgb[o + k] = Math.max(0, Math.min(255, Math.round(c[k])));
  }
}

sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
  .resize(W, H, { kernel: 'lanczos3' })
  .png({ compressionLevel: 9 })
  .toFile(out)
  .then((info) => console.log(`wrote ${out}: ${info.width}x${info.height}, ${info.size} bytes`))
  .catch((err) => {
    console.error(`make-sample: ${err.message}`);
    process.exitCode = 1;
  });
