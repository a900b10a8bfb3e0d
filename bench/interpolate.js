'use strict';
// Interpolation benchmark: ms per frame on the CPU, film-features vs the same TorchScript file run by
// Python's torch on the same padded frames. Usage:
//   node bench/interpolate.js [--model film_net_fp32.pt] [--size 1024x768] [--threads 2] [--runs 5] [--warmup 1]
// Without --model: the test fixture test/.fixtures/film_net_tiny.pt (FILM's structure, small widths),
// which measures the addon's overhead around the model more than the model.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { Interpolator } = require('..');
const { native } = require('../dist/native');
const { randomTensor, timeInterleaved, median, gcHook, table, machineLines, fmt } = require('./common');

const root = path.resolve(__dirname, '..');
const fixtures = path.join(root, 'test', '.fixtures');
const tiny = path.join(fixtures, 'film_net_tiny.pt');

function options() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      size: { type: 'string', default: '1024x768' },
      threads: { type: 'string', default: String(os.availableParallelism()) },
      runs: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
    },
  });
  const m = /^(\d+)x(\d+)$/.exec(values.size);
  if (!m) throw new RangeError(`--size: expected WxH, got '${values.size}'`);
  return { model: values.model, width: Number(m[1]), height: Number(m[2]), threads: Number(values.threads),
    runs: Number(values.runs), warmup: Number(values.warmup) };
}

function isa() {
  const flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m) ?? ['', ''])[1].split(' ');
  return ['avx512f', 'avx512_bf16', 'avx2', 'fma'].filter((f) => flags.includes(f)).join(' ') || 'no AVX';
}

// The same file in Python: pad as FILM does, then time forward() alone (warm-up first).
const PYTHON = `
import sys, time, json, torch
model, w, h, threads, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
m = torch.jit.load(model, map_location='cpu').float().eval()
ph, pw = -h % 64, -w % 64
x0 = torch.nn.functional.pad(torch.rand(1, 3, h, w), (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
x1 = torch.nn.functional.pad(torch.rand(1, 3, h, w), (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
dt = torch.full((1, 1, 1, 1), 0.5)
out = []
with torch.inference_mode():
    warmup = max(warmup, 2)  # the profiling executor optimizes on the second run
    for i in range(warmup + runs):
        t = time.perf_counter(); m(x0, x1, dt).clamp(0, 1); ms = (time.perf_counter() - t) * 1000
        if i >= warmup: out.append(ms)
print(json.dumps(out))
`;

function python(o, model) {
  const r = spawnSync('/usr/bin/python3', ['-c', PYTHON, model, o.width, o.height, o.threads, o.runs, o.warmup].map(String),
    { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function main() {
  const o = options();
  let model = o.model;
  if (!model) {
    if (!fs.existsSync(tiny)) {
      fs.mkdirSync(fixtures, { recursive: true });
      const r = spawnSync('/usr/bin/python3', [path.join(root, 'test', 'make_fixtures.py'), fixtures], { stdio: 'inherit' });
      if (r.status !== 0) throw new Error('test/make_fixtures.py failed (it needs /usr/bin/python3 with torch)');
    }
    model = tiny;
  }
  const { width: w, height: h } = o;
  const film = await Interpolator.load(model, { device: 'cpu', threads: o.threads });
  const a = randomTensor(1, h, w, 1);
  const b = randomTensor(1, h, w, 2);
  const bytes = (seed) => ({ data: Uint8Array.from(randomTensor(1, h, w, seed).data, (v) => v * 255), width: w, height: h, channels: 3 });
  const ia = bytes(3);
  const ib = bytes(4);
  const gc = gcHook();
  process.stderr.write(`timing ${path.basename(model)} at ${w}x${h}, ${o.threads} threads, ${o.runs} runs...\n`);
  const py1 = python(o, model);
  const ms = await timeInterleaved({
    tensor: () => film.interpolate(a, b, { time: 0.5 }),
    rgb: () => film.interpolate(ia, ib, { time: 0.5 }),
    // 3 frames per call: divided by 3 below
    recursion: () => film.interpolate(a, b, { recursions: 2 }),
  }, o.runs, o.warmup, async () => gc());
  const py2 = python(o, model);
  film.dispose();

  const pyAll = [...(py1 ?? []), ...(py2 ?? [])];
  const pyMedian = pyAll.length ? median(pyAll) : NaN;
  const rows = [
    ['interpolate(Tensor4, Tensor4, { time: 0.5 })', fmt(median(ms.tensor)), fmt(median(ms.tensor) / pyMedian, 2)],
    ['interpolate(RgbImage, RgbImage, { time: 0.5 })', fmt(median(ms.rgb)), fmt(median(ms.rgb) / pyMedian, 2)],
    ['interpolate(..., { recursions: 2 }) per frame', fmt(median(ms.recursion) / 3), fmt(median(ms.recursion) / 3 / pyMedian, 2)],
    ['Python torch, same file: forward + clamp only', fmt(pyMedian), '1.00'],
  ];
  console.log(machineLines([`ISA: ${isa()}`, `libtorch ${native().torchVersion}`,
    `model: ${model} (${film.info.dtype}, optimized at load: ${film.info.optimized}); frames ${w}x${h} ` +
      `(padded to ${Math.ceil(w / 64) * 64}x${Math.ceil(h / 64) * 64}); ${o.threads} threads; median of ${o.runs} runs ` +
      `(Python: ${pyAll.length} runs in two blocks around the Node ones)`]).join('\n'));
  console.log();
  console.log(table(['call', 'ms per frame', 'vs Python'], rows));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
