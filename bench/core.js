'use strict';
// The core build (no libtorch) against the full build's oneDNN engine and onnxruntime-node, on the
// same weights and pyramid, interleaved in ONE process: both addon binaries are loaded side by side
// (each its own .node file; both call the one oneDNN library already loaded), each run through its
// binding. Then load time to the first result, in fresh processes, for each build.
// Usage: node bench/core.js [--runs 7] [--warmup 2] [--sizes 256,512,720] [--threads 2]
//   [--core FILE] [--full FILE]   (default: build-core/Release and the addon film-features loads)
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { buildPyramid, defaultModelPath } = require('..');
const { native, addonBuild } = require('../dist/native');
const { readExtractorWeights } = require('../dist/model-file');
const { randomTensor, timeInterleaved, median, gcHook, table, machineLines, fmt, cliOptions } = require('./common');

const LEVELS = 7;
const root = path.resolve(__dirname, '..');
const onnxPath = path.join(__dirname, '.cache', 'film_extractor.onnx');
const NAMED = { 256: [256, 256], 512: [512, 512], 720: [720, 1280] };

function ensureOnnx() {
  if (fs.existsSync(onnxPath) && fs.statSync(onnxPath).mtimeMs >= fs.statSync(defaultModelPath).mtimeMs) return;
  fs.mkdirSync(path.dirname(onnxPath), { recursive: true });
  const r = spawnSync('/usr/bin/python3', ['models/export.py', '--from', defaultModelPath, '--onnx', '--out', onnxPath], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ONNX export failed: ${r.stderr}`);
}

/** Load time to the first result of a 256x256 extract, in a fresh process per run: [require, load, first extract] ms. */
function loadTimes(addon, runs) {
  const script = `
    const t0 = process.hrtime.bigint();
    const { FeatureExtractor } = require(${JSON.stringify(root)});
    const ms = (a, b) => Number(b - a) / 1e6;
    (async () => {
      const t1 = process.hrtime.bigint();
      const fx = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 2 });
      const t2 = process.hrtime.bigint();
      const data = new Uint8Array(256 * 256 * 3).fill(90);
      await fx.extract({ data, width: 256, height: 256, channels: 3 });
      const t3 = process.hrtime.bigint();
      console.log(JSON.stringify({ require: ms(t0, t1), load: ms(t1, t2), first: ms(t2, t3), variant: fx.info.build.variant }));
    })();`;
  const out = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, FILM_FEATURES_ADDON: addon }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`load-time run failed: ${r.stderr}`);
    out.push(JSON.parse(r.stdout.trim().split('\n').pop()));
  }
  return out;
}

async function main() {
  const opts = cliOptions({ runs: 7, warmup: 2, sizes: '256,512,720', threads: 2, core: undefined, full: undefined });
  const runs = Number(opts.runs);
  const threads = Number(opts.threads);
  const fullFile = path.resolve(opts.full ?? addonBuild().file);
  const coreFile = path.resolve(opts.core ?? path.join(root, 'build-core', 'Release', 'film_features.node'));
  const full = fullFile === addonBuild().file ? native() : require(fullFile);
  const core = require(coreFile);
  if (full.build !== 'full' || core.build !== 'core') throw new Error(`expected a full and a core build, got ${full.build} and ${core.build}`);
  ensureOnnx();
  const ort = require('onnxruntime-node');

  const w = await readExtractorWeights(defaultModelPath);
  const weights = { source: w.source, format: w.format, dtype: w.dtype, origin: w.origin, channels: w.channels, stages: w.stages };
  const fullHandle = await full.load(defaultModelPath, 'cpu', threads, false, 'onednn', 'fp32', weights);
  const coreHandle = await core.load(defaultModelPath, 'cpu', threads, false, 'onednn', 'fp32', weights);
  const { isa, onednn: onednnVersion } = coreHandle.info;
  const flags = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').split(' ')
    .filter((f) => /^(avx2|fma|avx512f|avx512_bf16|amx_bf16|amx_tile)$/.test(f)).join(' ');
  const session = await ort.InferenceSession.create(onnxPath, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'],
  });
  const gc = gcHook();
  const between = () => { gc(); return new Promise((resolve) => setTimeout(resolve, 20)); };

  const rows = [];
  for (const size of String(opts.sizes).split(',')) {
    const [h, wd] = NAMED[size] ?? size.split('x').map(Number);
    const pyramid = buildPyramid(randomTensor(1, h, wd), LEVELS);
    const feeds = Object.fromEntries(pyramid.map((l, i) => [`level${i}`, new ort.Tensor('float32', l.data, l.shape)]));
    const run = (handle) => handle.run(pyramid, LEVELS, threads, 0).promise;
    // the same numbers from both builds: the same engine on the same weights
    const [a, b] = [await run(fullHandle), await run(coreHandle)];
    let diff = 0;
    a.forEach((level, i) => level.data.forEach((v, k) => { diff = Math.max(diff, Math.abs(v - b[i].data[k])); }));
    console.error(`${h}x${wd}: core vs full max abs difference ${diff}`);
    const ms = await timeInterleaved({
      full: () => run(fullHandle),
      core: () => run(coreHandle),
      onnxruntime: () => session.run(feeds),
    }, runs, Number(opts.warmup), between);
    const m = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, median(v)]));
    rows.push([`${h}x${wd}`, fmt(m.full), fmt(m.core), fmt(m.onnxruntime), fmt(m.core / m.full, 2), fmt(m.core / m.onnxruntime, 2), String(diff)]);
  }
  fullHandle.dispose();
  coreHandle.dispose();

  const loads = { full: loadTimes(fullFile, 5), core: loadTimes(coreFile, 5) };
  const loadRows = Object.entries(loads).map(([name, r]) => [name, fmt(median(r.map((x) => x.require))), fmt(median(r.map((x) => x.load))),
    fmt(median(r.map((x) => x.first))), fmt(median(r.map((x) => x.load + x.first)))]);

  console.log(machineLines([`CPU flags: ${flags}; oneDNN ${onednnVersion}, ISA ${isa}; onnxruntime-node ${require('onnxruntime-node/package.json').version}; threads ${threads}; runs ${runs} (median)`,
    `full: ${path.relative(root, fullFile)} (libtorch ${full.torchVersion}); core: ${path.relative(root, coreFile)}`]).join('\n'));
  console.log('\nExtraction, interleaved in one process (ms, median):\n');
  console.log(table(['size', 'full (oneDNN)', 'core', 'onnxruntime', 'core / full', 'core / ort', 'max |core - full|'], rows));
  console.log('\nLoad to first result, fresh process, default model, 256x256 first extract (ms, median of 5):\n');
  console.log(table(['build', 'require', 'load()', 'first extract', 'load + first'], loadRows));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
