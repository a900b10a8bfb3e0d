'use strict';
// Interpolation benchmark: ms per frame on the CPU, film-features (the fused oneDNN engine, and the
// file's TorchScript through libtorch) vs the same TorchScript file run by Python's torch on the same
// padded frames, run by run in turn (one Python process kept open). Usage:
//   node bench/interpolate.js [--model film_net_fp32.pt] [--size 1024x768] [--threads 2] [--runs 3] [--warmup 2] [--all]
//     [--engine auto|onednn|torchscript] [--no-torchscript] [--bf16]
// Without --model: FILM at its full size (34.4 M parameters, random weights) written by
// models/export.py --interpolator to a temporary file, deleted at the end. --all also times 8-bit
// RgbImage frames and recursion; --bf16 also times precision 'bf16' (where the CPU has it) and its
// difference from fp32.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const { Interpolator } = require('..');
const { native } = require('../dist/native');
const { randomTensor, median, gcHook, table, machineLines, fmt, now, cliOptions } = require('./common');
const { ensureCpp, fmaPeak } = require('./cpp');
const { readModelFile } = require('../dist/model-file');

const root = path.resolve(__dirname, '..');

function options() {
  const values = cliOptions({ model: undefined, size: '1024x768', threads: 2, runs: 3, warmup: 2, all: false,
    engine: 'auto', 'no-torchscript': false, bf16: false });
  const m = /^(\d+)x(\d+)$/.exec(values.size);
  if (!m) throw new RangeError(`--size: expected WxH, got '${values.size}'`);
  return { model: values.model, width: Number(m[1]), height: Number(m[2]), threads: values.threads,
    runs: values.runs, warmup: values.warmup, all: values.all, engine: values.engine, bf16: values.bf16,
    torchscript: !values['no-torchscript'] && values.engine !== 'torchscript' && native().build === 'full' };
}

function isa() {
  const flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m) ?? ['', ''])[1].split(' ');
  return ['avx512f', 'avx512_bf16', 'avx2', 'fma'].filter((f) => flags.includes(f)).join(' ') || 'no AVX';
}

// The same file in Python, kept open: pads as FILM does, then times forward + clamp once per line
// read from stdin, printing the ms. batch_dt in the shape the addon found for this file.
const PYTHON = `
import sys, time, torch
model, w, h, threads, rank = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
m = torch.jit.load(model, map_location='cpu').float().eval()
ph, pw = -h % 64, -w % 64
pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
x0 = torch.nn.functional.pad(torch.rand(1, 3, h, w), pad)
x1 = torch.nn.functional.pad(torch.rand(1, 3, h, w), pad)
dt = torch.full((1,) + (1,) * (rank - 1), 0.5)
print('ready', flush=True)
with torch.inference_mode():
    for line in sys.stdin:
        t = time.perf_counter(); m(x0, x1, dt).clamp(0, 1)
        print((time.perf_counter() - t) * 1000, flush=True)
`;

function startPython(o, model, rank) {
  const child = spawn('/usr/bin/python3', ['-c', PYTHON, model, o.width, o.height, o.threads, rank].map(String),
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error('the Python process ended');
    return value;
  };
  return {
    ready: next,
    async run() {
      child.stdin.write('run\n');
      return Number(await next());
    },
    close: () => child.stdin.end(),
  };
}

/**
 * GFLOP of one frame's convolutions counted as direct ones (2 per multiply-add; the fusion's 2x2 on
 * the nearest x2 as a 2x2 at the finer level, as torch's FlopCounterMode counts it), for a file in
 * the PyTorch port's layout at padded size w x h; null for other files.
 */
async function filmGflop(model, w, h) {
  const file = await readModelFile(model);
  const levels = Number(file.attributes?.pyramid_levels ?? 7);
  const pixels = (m) => (h >> m) * (w >> m);
  const shapes = new Map([...file.tensors].map(([name, t]) => [name, t.shape]));
  const macs = (name) => { const [o, i, kh, kw] = shapes.get(name); return o * i * kh * kw; };
  let flow = 0;
  while (shapes.has(`predict_flow._predictors.${flow}._convs.0.0.weight`)) flow++;
  let fusion = 0;
  while (shapes.has(`fuse.convs.${fusion}.0.0.weight`)) fusion++;
  if (!shapes.has('predict_flow._predictor._convs.0.0.weight') || fusion === 0) return null;
  let total = 0;
  for (const [name] of shapes) {
    if (!name.endsWith('.weight')) continue;
    let m;
    if ((m = /^extract\.extract_sublevels\.convs\.(\d+)\./.exec(name))) {
      for (let level = Number(m[1]); level < levels; level++) total += 2 * macs(name) * pixels(level); // both frames
    } else if ((m = /^predict_flow\._predictors\.(\d+)\./.exec(name))) {
      total += 2 * macs(name) * pixels(flow - 1 - Number(m[1])); // both directions
    } else if (name.startsWith('predict_flow._predictor.')) {
      for (let level = flow; level < levels; level++) total += 2 * macs(name) * pixels(level);
    } else if ((m = /^fuse\.convs\.(\d+)\./.exec(name))) {
      total += macs(name) * pixels(fusion - 1 - Number(m[1]));
    } else if (name === 'fuse.output_conv.weight') {
      total += macs(name) * pixels(0);
    }
  }
  return (2 * total) / 1e9;
}

async function main() {
  const o = options();
  let model = o.model;
  let tmp;
  if (!model) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-bench-'));
    model = path.join(tmp, 'film_net.pt');
    const r = spawnSync('/usr/bin/python3', [path.join(root, 'models', 'export.py'), '--interpolator', model], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('models/export.py --interpolator failed (it needs /usr/bin/python3 with torch)');
  }
  try {
    await bench(o, model, o.model ?? 'export.py --interpolator (full size, random weights)');
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function bench(o, model, label) {
  const { width: w, height: h } = o;
  const film = await Interpolator.load(model, { device: 'cpu', threads: o.threads, engine: o.engine });
  // the file's TorchScript through libtorch, beside the engine (full build)
  const script = o.torchscript ? await Interpolator.load(model, { device: 'cpu', threads: o.threads, engine: 'torchscript' }) : null;
  const bf16 = o.bf16 ? await Interpolator.load(model, { device: 'cpu', threads: o.threads, precision: 'bf16' }) : null;
  const rank = (script ?? film).info.dtShape === '[n, 1, 1, 1]' ? 4 : 2;
  const python = startPython(o, model, rank);
  await python.ready();
  const a = randomTensor(1, h, w, 1);
  const b = randomTensor(1, h, w, 2);
  const bytes = (seed) => ({ data: Uint8Array.from(randomTensor(1, h, w, seed).data, (v) => v * 255), width: w, height: h, channels: 3 });
  const ia = bytes(3);
  const ib = bytes(4);
  const gc = gcHook();
  const calls = {
    tensor: () => film.interpolate(a, b, { time: 0.5 }),
    ...(script ? { torchscript: () => script.interpolate(a, b, { time: 0.5 }) } : {}),
    ...(bf16 ? { bf16: () => bf16.interpolate(a, b, { time: 0.5 }) } : {}),
    ...(o.all ? {
      rgb: () => film.interpolate(ia, ib, { time: 0.5 }),
      recursion: () => film.interpolate(a, b, { recursions: 2 }), // 3 frames: divided by 3 below
    } : {}),
    python: () => python.run(),
  };
  const ms = Object.fromEntries(Object.keys(calls).map((k) => [k, []]));
  process.stderr.write(`timing ${label} at ${w}x${h}, ${o.threads} threads, ${o.warmup} + ${o.runs} rounds, ` +
    `in turn: ${Object.keys(calls).join(', ')}...\n`);
  const firsts = {}; // each engine's first frame: the engine against the file's TorchScript
  for (let round = 0; round < o.warmup + o.runs; round++) {
    for (const [name, call] of Object.entries(calls)) {
      gc();
      const t = now();
      const result = await call();
      if (round === 0 && name !== 'python') firsts[name] = result.data;
      const took = name === 'python' ? result : now() - t;
      if (round >= o.warmup) ms[name].push(took);
      process.stderr.write(`  round ${round + 1}${round < o.warmup ? ' (warm-up)' : ''} ${name}: ${fmt(took)} ms\n`);
    }
  }
  python.close();
  film.dispose();
  script?.dispose();
  bf16?.dispose();

  let diff = null;
  if (firsts.tensor && firsts.torchscript) {
    diff = 0;
    firsts.tensor.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - firsts.torchscript[i])); });
  }
  const py = median(ms.python);
  const row = (what, value) => [what, fmt(value), fmt(value / py, 2)];
  const rows = [row(`interpolate(Tensor4, Tensor4, { time: 0.5 }), engine ${film.info.engine}`, median(ms.tensor))];
  if (script) rows.push(row("the same, engine 'torchscript' (the file's own code through libtorch)", median(ms.torchscript)));
  let bf16Diff = null;
  if (bf16) {
    rows.push(row(`the same, precision 'bf16' (fp32 / bf16: ${fmt(median(ms.tensor) / median(ms.bf16), 2)}x)`, median(ms.bf16)));
    bf16Diff = 0;
    firsts.tensor.forEach((v, i) => { bf16Diff = Math.max(bf16Diff, Math.abs(v - firsts.bf16[i])); });
  }
  if (o.all) {
    rows.push(row('interpolate(RgbImage, RgbImage, { time: 0.5 })', median(ms.rgb)));
    rows.push(row('interpolate(..., { recursions: 2 }) per frame', median(ms.recursion) / 3));
  }
  rows.push(row('Python torch, same file: forward + clamp only', py));
  // the engine's rate against the machine's FMA peak (bench/cpp/fma_peak, same threads, after the runs)
  const pw = Math.ceil(w / 64) * 64, ph = Math.ceil(h / 64) * 64;
  const gflop = await filmGflop(model, pw, ph);
  let rate = null;
  if (gflop !== null) {
    ensureCpp(['fma_peak']);
    const peak = fmaPeak(isa().includes('avx512f') ? 'avx512_core' : 'avx2', o.threads);
    const perSecond = gflop / (median(ms.tensor) / 1000);
    rate = `${fmt(gflop, 0)} GFLOP a frame (direct convolutions) / ${fmt(median(ms.tensor) / 1000, 2)} s = ` +
      `${fmt(perSecond, 0)} GFLOP/s; FMA peak (bench/cpp/fma_peak, ${o.threads} threads) ${fmt(peak.gflops, 0)} GFLOP/s: ` +
      `${fmt((100 * perSecond) / peak.gflops, 0)}% (Winograd does 2.25x fewer multiplications in most 3x3 layers)`;
  }
  console.log(machineLines([`ISA: ${isa()}`, `${native().build} build, libtorch ${native().torchVersion ?? 'none'}`,
    `model: ${label} (${film.info.dtype}, engine ${film.info.engine}, optimized at load: ${film.info.optimized}); ` +
      `frames ${w}x${h} (padded to ${Math.ceil(w / 64) * 64}x${Math.ceil(h / 64) * 64}); ${o.threads} threads; ` +
      `median of ${o.runs} rounds after ${o.warmup} warm-up rounds, Node and Python in turn`]).join('\n'));
  console.log();
  console.log(table(['call', 'ms per frame', 'vs Python'], rows));
  if (diff !== null) console.log(`\nmax |engine - torchscript| over the frame: ${diff.toExponential(2)}`);
  if (bf16Diff !== null) console.log(`max |bf16 - fp32| over the frame: ${bf16Diff.toExponential(2)}`);
  if (rate) console.log(`\n${rate}`);
  console.log(`\nall runs (ms): ${JSON.stringify(Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, v.map((x) => Math.round(x))])))}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
