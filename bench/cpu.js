'use strict';
// CPU benchmark: film-features (oneDNN engine) vs onnxruntime-node vs the same engine in a bare C++
// loop, on the same weights and the same pyramid; optionally the TorchScript engine too.
// Usage: node bench/cpu.js [--quick] [--runs N] [--warmup N] [--sizes 256,512,720 | HxW,...]
//   [--batch 1,4] [--threads 1,2] [--torchscript] [--no-bf16] [--no-profile]
// With bf16 (where oneDNN's ISA has it) film-features also runs with precision: 'bf16', in turn
// with the rest; a second table breaks the engine's time down by primitive (bench/profile.js).
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { FeatureExtractor, buildPyramid, defaultModelPath } = require('..');
const { native } = require('../dist/native');
const { randomTensor, timeInterleaved, median, gcHook, table, machineLines, fmt } = require('./common');
const { profile, profileRow, PROFILE_HEADER } = require('./profile');
const { sh, olderThan, ensureCpp, cppBinary, fmaPeak, fmaFamily } = require('./cpp');

const LEVELS = 7; // the ONNX export has exactly 7 inputs
const root = path.resolve(__dirname, '..');
const cache = path.join(__dirname, '.cache');
const onnxPath = path.join(cache, 'film_extractor.onnx');
const NAMED_SIZES = { 256: [256, 256], 512: [512, 512], 720: [720, 1280] };

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      warmup: { type: 'string', default: '2' },
      sizes: { type: 'string' },
      batch: { type: 'string' },
      threads: { type: 'string' },
      torchscript: { type: 'boolean', default: false },
      'no-bf16': { type: 'boolean', default: false },
      'no-profile': { type: 'boolean', default: false },
    },
  });
  const q = values.quick;
  const list = (text, fallback) => (text ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);
  const ints = (text, fallback) => list(text, fallback).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`expected positive integers, got '${s}'`);
    return n;
  });
  const sizes = list(values.sizes, q ? '256,512' : '256,512,720').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s);
    const size = m ? [Number(m[1]), Number(m[2])] : NAMED_SIZES[s];
    if (!size) throw new RangeError(`unknown size '${s}': use 256, 512, 720 or HxW`);
    return size;
  });
  return {
    sizes,
    batches: ints(values.batch, q ? '1' : '1,4'),
    threads: ints(values.threads, q ? '2' : '1,2'),
    runs: ints(values.runs, q ? '3' : '5')[0],
    warmup: Number(values.warmup),
    torchscript: values.torchscript,
    bf16: !values['no-bf16'],
    profile: !values['no-profile'],
  };
}

/** The ONNX twin of the shipped model, same weights, made by models/export.py. */
function ensureOnnx() {
  if (!olderThan(onnxPath, defaultModelPath)) return;
  console.error(`exporting ${path.relative(root, onnxPath)} ...`);
  fs.mkdirSync(cache, { recursive: true });
  sh('/usr/bin/python3', ['models/export.py', '--from', defaultModelPath, '--onnx', '--out', onnxPath]);
}

/** The bare C++ loop: { first, ms: [...] } for an engine ('onednn' or 'torchscript'). */
function cppLoop(engine, threads, [n, , h, w], runs) {
  const out = sh(cppBinary, [defaultModelPath, threads, n, h, w, LEVELS, runs, engine].map(String));
  return JSON.parse(out.trim().split('\n').pop());
}

const BF16_ISAS = /^avx512_core_(bf16|amx|fp16|amx_fp16)$/;

async function timeOnce(fn) {
  const start = process.hrtime.bigint();
  const result = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, result };
}

/** 2 * multiply-adds of the convolutions the model actually runs (stage j of level i: n_i stages). */
function flops([n, , h, w], channels, subLevels) {
  let macs = 0;
  for (let i = 0; i < LEVELS; i++) {
    for (let j = 0; j < Math.min(LEVELS - i, subLevels); j++) {
      const cin = j === 0 ? 3 : channels << (j - 1);
      const cout = channels << j;
      macs += (h >> (i + j)) * (w >> (i + j)) * 9 * cout * (cin + cout);
    }
  }
  return 2 * n * macs;
}

/** max |a - b| / max |b| over all levels. */
function relativeError(ours, theirs) {
  let diff = 0;
  let scale = 0;
  ours.forEach((level, i) => {
    const ref = theirs[i];
    for (let k = 0; k < ref.length; k++) {
      diff = Math.max(diff, Math.abs(level.data[k] - ref[k]));
      scale = Math.max(scale, Math.abs(ref[k]));
    }
  });
  return diff / scale;
}

async function main() {
  const opts = options();
  const ort = require('onnxruntime-node');
  ensureOnnx();
  ensureCpp();
  // Between timed calls: collect the (big, zero-copy) outputs, and let spinning pool threads park.
  const gc = gcHook();
  const settle = () => {
    gc();
    return new Promise((resolve) => setTimeout(resolve, 20));
  };
  const torchVersion = native().torchVersion;
  const ortVersion = require('onnxruntime-node/package.json').version;

  const extractors = new Map(); // threads -> { onednn, bf16?, torchscript? }
  const sessions = new Map();
  for (const threads of opts.threads) {
    const load = (engine, precision) => FeatureExtractor.load(undefined, { device: 'cpu', threads, engine, precision });
    const onednn = await load('onednn');
    const bf16 = opts.bf16 && BF16_ISAS.test(onednn.info.isa) ? await load('onednn', 'bf16') : null;
    extractors.set(threads, { onednn, bf16, torchscript: opts.torchscript ? await load('torchscript') : null });
    sessions.set(threads, await ort.InferenceSession.create(onnxPath, {
      intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'],
    }));
  }
  const { channels, subLevels, isa, onednn: onednnVersion } = extractors.get(opts.threads[0]).onednn.info;

  const rows = [];
  const agreement = [];
  for (const [h, w] of opts.sizes) {
    for (const batch of opts.batches) {
      const image = randomTensor(batch, h, w);
      const pyramid = buildPyramid(image, LEVELS);
      const feeds = Object.fromEntries(pyramid.map((l, i) => [`level${i}`, new ort.Tensor('float32', l.data, l.shape)]));
      const work = flops(image.shape, channels, subLevels);
      for (const threads of opts.threads) {
        const label = `${h}x${w} batch ${batch} threads ${threads}`;
        const fx = extractors.get(threads);
        const session = sessions.get(threads);

        // The first call at this (batch, size, threads) makes the engine's primitives.
        const first = await timeOnce(() => fx.onednn.extractPyramid(pyramid));
        if (agreement.length === 0 || agreement.at(-1)[0] !== `${h}x${w}`) {
          const theirs = await session.run(feeds);
          const err = relativeError(first.result, pyramid.map((_, i) => theirs[`features${i}`].data));
          agreement.push([`${h}x${w}`, String(batch), err.toExponential(2)]);
          console.error(`${h}x${w}: film-features vs onnxruntime, max relative error ${err.toExponential(2)}`);
        }
        first.result = null;
        const firstBf16 = fx.bf16 ? await timeOnce(() => fx.bf16.extractPyramid(pyramid)) : null;
        if (firstBf16) firstBf16.result = null;

        console.error(`${label}: film-features and onnxruntime ...`);
        const fns = {
          extract: () => fx.onednn.extract(image, { levels: LEVELS }),
          nhwc: () => fx.onednn.extract(image, { levels: LEVELS, layout: 'nhwc' }),
          forward: () => fx.onednn.extractPyramid(pyramid),
          ort: () => session.run(feeds),
        };
        if (fx.torchscript) fns.torchscript = () => fx.torchscript.extractPyramid(pyramid);
        if (fx.bf16) fns.bf16 = () => fx.bf16.extract(image, { levels: LEVELS });
        // Each in-process call follows one untimed call of its own (the children below follow whatever).
        const primes = { ...fns };
        // The bare loop takes its turn too: a child process per round, timing one warm call.
        const cppMs = [];
        fns.cpp = () => cppMs.push(...cppLoop('onednn', threads, image.shape, 1).ms);
        // And the peak, in turn with the rest, since what the machine gives changes minute to minute.
        const peakRuns = [];
        fns.peak = () => peakRuns.push(fmaPeak(isa, threads));
        // The process's CPU time per call as well: on a shared machine, wall time counts the other
        // tenants' work too, and CPU time (all threads, spinning included) does not.
        const cpuMs = { extract: [], ort: [] };
        for (const name of Object.keys(cpuMs)) {
          const fn = fns[name];
          fns[name] = async () => {
            const before = process.cpuUsage();
            await fn();
            const used = process.cpuUsage(before);
            cpuMs[name].push((used.user + used.system) / 1000);
          };
        }
        const ms = await timeInterleaved(fns, opts.runs, opts.warmup, settle, primes);
        const [extract, forward, ortMs] = ['extract', 'forward', 'ort'].map((k) => median(ms[k]));
        const [extractCpu, ortCpu] = ['extract', 'ort'].map((k) => median(cpuMs[k].slice(opts.warmup)));
        const cpp = median(cppMs.slice(opts.warmup));
        const peak = median(peakRuns.slice(opts.warmup).map((p) => p.gflops));
        const peakCpu = median(peakRuns.slice(opts.warmup).map((p) => p.perCpuSecond));
        const gflops = work / extract / 1e6;

        const row = [`${h}x${w}`, batch, threads, fmt(extract), fmt(forward), fmt(ortMs), fmt(cpp),
          fmt(extract / ortMs, 2), fmt(extract / cpp, 2), fmt(forward / cpp, 2), fmt(gflops), fmt(peak), fmt((100 * gflops) / peak),
          fmt(first.ms), fmt(extractCpu), fmt(ortCpu), fmt(extractCpu / ortCpu, 2),
          fmt((100 * work) / extractCpu / 1e6 / peakCpu), fmt((100 * work) / ortCpu / 1e6 / peakCpu)];
        row.push(fmt(median(ms.nhwc)), fmt(median(ms.nhwc) / ortMs, 2));
        const bf16 = fx.bf16 ? median(ms.bf16) : NaN;
        row.push(fmt(bf16), fmt(bf16 / ortMs, 2), fmt(extract / bf16, 2), fmt(firstBf16?.ms ?? NaN));
        if (fx.torchscript) row.push(fmt(median(ms.torchscript)), fmt(median(ms.torchscript) / ortMs, 2));
        rows.push(row);
        console.error(`${label}: ${row.slice(3).join(' ')}`);
      }
    }
  }
  for (const fx of extractors.values()) Object.values(fx).forEach((e) => e?.dispose());

  // Where the time goes, per kind of primitive: fp32 and bf16, both layouts, each size and thread count.
  const profiles = [];
  if (opts.profile) {
    const precisions = opts.bf16 && BF16_ISAS.test(isa) ? ['fp32', 'bf16'] : ['fp32'];
    for (const [h, w] of opts.sizes) {
      for (const threads of opts.threads) {
        for (const precision of precisions) {
          for (const layout of ['nchw', 'nhwc']) {
            console.error(`profile ${h}x${w} threads ${threads} ${precision} ${layout} ...`);
            const p = profile(cppBinary, defaultModelPath, { threads, shape: [1, 3, h, w], levels: LEVELS, repeats: opts.runs, precision, layout });
            profiles.push(profileRow([`${h}x${w}`, 1, threads, precision, layout], p));
          }
        }
      }
    }
  }

  const cpus = require('node:os').cpus();
  console.log(machineLines([
    `CPU: ${cpus[0]?.model}; oneDNN ${onednnVersion}, ISA: ${isa} (FMA peak: bench/cpp/fma_peak ${fmaFamily(isa)}, timed in turn with the rest)`,
    `libtorch ${torchVersion}, onnxruntime-node ${ortVersion}`,
    `model: ${path.relative(root, defaultModelPath)} (C=${channels}, S=${subLevels}), ${LEVELS} levels, ` +
      `input uniform [0,1) seed 1; medians of ${opts.runs} runs after ${opts.warmup} warm-ups`,
  ]).join('\n'));
  console.log();
  const header = ['size', 'batch', 'threads', 'ff ms', 'ff forward ms', 'onnxruntime ms', 'C++ loop ms',
    'ff/ort', 'ff/C++', 'ff forward/C++', 'ff GFLOP/s', 'FMA peak GFLOP/s', '% of peak', 'first call ms',
    'ff CPU ms', 'ort CPU ms', 'ff/ort CPU', 'ff % of peak (CPU time)', 'ort % of peak (CPU time)',
    "ff 'nhwc' ms", "ff 'nhwc'/ort", 'ff bf16 ms', 'ff bf16/ort', 'bf16 speedup (ff/ff bf16)', 'bf16 first call ms'];
  if (opts.torchscript) header.push('TorchScript engine ms', 'TorchScript/ort');
  console.log(table(header, rows));
  console.log();
  console.log(table(['size', 'batch', 'max rel. error ff vs ort'], agreement));
  if (profiles.length) {
    console.log();
    console.log(`Per-primitive breakdown (bench/profile.js: ONEDNN_VERBOSE=1 in bench/cpp/forward_loop, median of ${opts.runs} warm runs per primitive):`);
    console.log();
    console.log(table(PROFILE_HEADER, profiles));
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
