'use strict';
// Interpolation memory: peak RSS (VmHWM) of a fresh process that loads FILM and makes one frame
// between a pair of float frames, per size, on the fused engine; and, with --check WxH, the frame
// of the default run (slabs of rows, finest features made again: FilmNetMemory) against the whole
// frame run at once, through the engine's test hook (that needs the whole run's memory). Usage:
//   node bench/interpolate-memory.js [--model film_net_fp32.pt] [--sizes 1920x1080,3840x2160]
//     [--threads 2] [--check 1920x1080]
// Without --model: FILM at its full size (random weights) from models/export.py --interpolator.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { table, machineLines, fmt, cliOptions } = require('./common');

const root = path.resolve(__dirname, '..');

// The child: one pair at WxH, then {ms, peakGiB, engine, build} on its last line.
const CHILD = `
const { Interpolator } = require(${JSON.stringify(root)});
const { native } = require(${JSON.stringify(path.join(root, 'dist', 'native'))});
const [model, w, h, threads] = process.argv.slice(1);
const frame = (seed) => {
  const data = new Float32Array(3 * h * w);
  let s = seed;
  for (let i = 0; i < data.length; i++) { s = (s * 1664525 + 1013904223) >>> 0; data[i] = (s >>> 8) / 16777216; }
  return { data, shape: [1, 3, Number(h), Number(w)] };
};
(async () => {
  const film = await Interpolator.load(model, { device: 'cpu', threads: Number(threads) });
  await new Promise((r) => setTimeout(r, 500)); // the load's idle release
  const a = frame(1), b = frame(2);
  const t = performance.now();
  await film.interpolate(a, b, { time: 0.5 });
  const ms = performance.now() - t;
  const peak = Number(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 2 ** 20;
  console.log(JSON.stringify({ ms, peakGiB: peak, engine: film.info.engine, build: native().build }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function peakOf(model, w, h, threads) {
  const r = spawnSync(process.execPath, ['-e', CHILD, model, w, h, threads].map(String), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${w}x${h}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// The default run against the whole frame at once, via binding._internal.filmNetForward.
async function check(model, w, h) {
  const { readModelFile, toFloat32 } = require('../dist/model-file');
  const { native } = require('../dist/native');
  const { randomTensor } = require('./common');
  const file = await readModelFile(model);
  const tensors = {};
  for (const [name, t] of file.tensors) tensors[name] = { data: toFloat32(t), shape: t.shape };
  const levels = Number(file.attributes?.pyramid_levels ?? 7);
  const unit = 2 ** (levels - 1);
  const ph = Math.ceil(h / unit) * unit, pw = Math.ceil(w / unit) * unit;
  const a = { data: randomTensor(1, ph, pw, 1).data, shape: [1, 3, ph, pw] };
  const b = { data: randomTensor(1, ph, pw, 2).data, shape: [1, 3, ph, pw] };
  const run = (memory) => native()._internal.filmNetForward(tensors, a, b, [0.5], levels, 1, memory).data;
  const parts = run({});
  const whole = run({ recompute: 0, band: 1 << 20 });
  let max = 0;
  for (let i = 0; i < whole.length; i++) max = Math.max(max, Math.abs(parts[i] - whole[i]));
  return { size: `${pw}x${ph}`, max };
}

async function main() {
  const o = cliOptions({ model: undefined, sizes: '1920x1080,3840x2160', threads: 2, check: '' });
  let model = o.model;
  let tmp;
  if (!model) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-memory-'));
    model = path.join(tmp, 'film_net.pt');
    const r = spawnSync('/usr/bin/python3', [path.join(root, 'models', 'export.py'), '--interpolator', model], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('models/export.py --interpolator failed (it needs /usr/bin/python3 with torch)');
  }
  try {
    const rows = [];
    let info;
    for (const size of o.sizes.split(',')) {
      const [w, h] = size.split('x').map(Number);
      process.stderr.write(`one pair at ${w}x${h}...\n`);
      info = peakOf(model, w, h, o.threads);
      rows.push([`${w}x${h}`, fmt(info.peakGiB, 2), fmt(info.peakGiB * 2 ** 30 / 1e9, 2), fmt(info.ms / 1000, 1)]);
    }
    console.log(machineLines([`${info.build} build; model: ${o.model ?? 'export.py --interpolator'}; engine ${info.engine}; ` +
      `${o.threads} threads; one process per size (load, then one pair at t = 0.5)`]).join('\n'));
    console.log();
    console.log(table(['frames', 'peak RSS (GiB)', 'peak RSS (GB)', 'seconds'], rows));
    if (o.check) {
      const [w, h] = o.check.split('x').map(Number);
      const c = await check(model, w, h);
      console.log(`\nslabs and features made again vs the whole frame at once, ${c.size}: max abs ${c.max.toExponential(2)}`);
    }
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
