'use strict';
// Fixtures, made once per clone by checked-in scripts (never downloaded): small TorchScript models
// from models/export.py and float64 reference outputs from test/reference.py, kept in test/.fixtures/.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dir = path.join(__dirname, '.fixtures');
const defaultModel = path.join(root, 'models', 'film_extractor.pt');

// Without the ASan runtime that npm run test:asan preloads for node: Python's torch breaks under it.
const { LD_PRELOAD, ...childEnv } = process.env;

const runs = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore', env: childEnv }).status === 0;

// Python with torch and numpy, for the float64 references and the fixture models: FILM_TEST_PYTHON,
// else Debian's python3-torch at /usr/bin/python3 (a python3 first on PATH may lack torch), else that.
const python = process.env.FILM_TEST_PYTHON ||
  ['/usr/bin/python3', 'python3'].find((py) => runs(py, ['-c', 'import torch, numpy'])) || '/usr/bin/python3';

// What the tests need beyond this checkout: each check returns how to get it, or nothing.
const prerequisites = {
  python: () => !runs(python, ['-c', 'import torch, numpy']) &&
    `${python} with torch and numpy: apt-get install python3-torch python3-numpy (or set FILM_TEST_PYTHON)`,
  sharp: () => {
    try {
      require('sharp');
      return false;
    } catch (err) {
      return `sharp, a dependency, does not load (${err.message.split('\n')[0]}): npm install`;
    }
  },
  ffmpeg: () => !(runs('ffmpeg', ['-version']) && runs('ffprobe', ['-version'])) && 'ffmpeg and ffprobe: apt-get install ffmpeg',
  strace: () => !runs('strace', ['-V']) && 'strace: apt-get install strace',
  unshare: () => !runs('unshare', ['--pid', '--fork', '--mount-proc', 'true']) && 'unshare with PID namespaces (util-linux, run as root)',
};

/**
 * Throws, naming the package to install, unless every prerequisite named is there: called where a
 * test file is loaded, it fails the run loudly rather than turning tests pending. (redis-server:
 * test/redis.js.)
 */
function need(...names) {
  const missing = names.map((name) => prerequisites[name]()).filter(Boolean);
  if (missing.length) throw new Error(`the tests need:\n  ${missing.join('\n  ')}`);
}

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: childEnv });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function stale(file, inputs) {
  if (!fs.existsSync(file)) return true;
  const t = fs.statSync(file).mtimeMs;
  return inputs.some((f) => fs.statSync(f).mtimeMs > t);
}

const fixture = (name) => path.join(dir, name);
const models = {
  default: defaultModel,
  small: fixture('film_c16_s3.pt'), // C=16, S=3: a non-default width and depth
  // made by test/make_fixtures.py (see there)
  same: fixture('film_same.pt'),
  interpolator: fixture('film_interpolator.pt'),
  interpolatorFp16: fixture('film_interpolator_fp16.pt'),
  badSignature: fixture('bad_signature.pt'),
  noExtract: fixture('no_extract.pt'),
  savedAfterOptimize: fixture('saved_after_optimize.pt'),
  // models/export.py --from film_interpolator.pt: the interpolator's extractor, standalone
  fromInterpolator: fixture('from_interpolator.pt'),
  // whole interpolators with FILM's structure, and a forward(x0, x1, batch_dt) returning a tuple
  tinyFilm: fixture('film_net_tiny.pt'), // batch_dt [n, 1], as the PyTorch port and Google's FILM
  tinyFilmOld: fixture('film_net_tiny_old.pt'), // the same weights, batch_dt [n, 1, 1, 1] (older files)
  tinyFilmFp16: fixture('film_net_tiny_fp16.pt'),
  tupleForward: fixture('tuple_forward.pt'),
  dtFlat: fixture('dt_flat.pt'), // takes batch_dt [n] only: neither convention runs
  fixedSize: fixture('fixed_size.pt'), // runs on 64x64 frames only
  fixedSizeExtractor: fixture('fixed_size_extractor.pt'), // an extractor that runs on 64x64 frames only
  // models/export.py --interpolator at reduced widths (models/film_net.py, the port's layout)
  exported: fixture('film_net_export_c8.pt'),
};

/** export.py --interpolator's arguments for models.exported: every part of FILM, narrow. */
const EXPORTED_ARGS = ['--channels', '8', '--flow-convs', '1,1,1,1', '--flow-filters', '8,8,16,16', '--seed', '5'];

function makeModels() {
  fs.mkdirSync(dir, { recursive: true });
  const exporter = path.join(root, 'models', 'export.py');
  const extractor = path.join(root, 'models', 'extractor.py');
  const filmNet = path.join(root, 'models', 'film_net.py');
  const maker = path.join(__dirname, 'make_fixtures.py');
  if (stale(models.small, [exporter, extractor])) {
    sh(python, [exporter, '--channels', '16', '--sub-levels', '3', '--seed', '1', '--out', models.small]);
  }
  if (stale(models.fixedSizeExtractor, [exporter, extractor, filmNet, maker])) sh(python, [maker, dir]);
  if (stale(models.exported, [exporter, extractor, filmNet])) {
    sh(python, [exporter, '--interpolator', models.exported, ...EXPORTED_ARGS]);
  }
  if (stale(models.fromInterpolator, [exporter, models.interpolator])) {
    sh(python, [exporter, '--from', models.interpolator, '--out', models.fromInterpolator]);
  }
}

const cases = [
  // every level count on one size that allows 7 (min side 67 >= 64)
  ...[1, 2, 3, 4, 5, 6, 7].map((levels) => ({ name: `default-67x131-L${levels}`, model: models.default, batch: 1, height: 67, width: 131, levels, seed: levels })),
  { name: 'default-97x61-L6', model: models.default, batch: 1, height: 97, width: 61, levels: 6, seed: 11 },
  { name: 'default-b2-64x80-L7', model: models.default, batch: 2, height: 64, width: 80, levels: 7, seed: 12 },
  { name: 'small-b2-67x131-L7', model: models.small, batch: 2, height: 67, width: 131, levels: 7, seed: 13 },
  { name: 'small-97x61-L4', model: models.small, batch: 1, height: 97, width: 61, levels: 4, seed: 14 },
  { name: 'same-67x131-L7', model: models.same, batch: 1, height: 67, width: 131, levels: 7, seed: 15 },
  { name: 'interpolator-b2-97x70-L6', model: models.interpolator, batch: 2, height: 97, width: 70, levels: 6, seed: 16 },
  { name: 'interpolatorFp16-97x70-L6', model: models.interpolatorFp16, batch: 1, height: 97, width: 70, levels: 6, seed: 17 },
];

let manifest;
function reference() {
  if (manifest) return manifest;
  const file = path.join(dir, 'manifest.json');
  const casesFile = path.join(dir, 'cases.json');
  const inputs = [path.join(__dirname, 'reference.py'), path.join(__dirname, 'reference_io.py'), __filename, models.small, models.default, models.same];
  if (stale(file, inputs)) {
    fs.writeFileSync(casesFile, JSON.stringify(cases));
    sh(python, [path.join(__dirname, 'reference.py'), dir, casesFile]);
  }
  manifest = JSON.parse(fs.readFileSync(file, 'utf8')).map((c) => ({
    ...c,
    pyramid: c.pyramid.map(readTensor),
    features: c.features.map(readTensor),
  }));
  return manifest;
}

// Interpolation references: the same TorchScript files run by Python (test/reference_interpolate.py).
const interpolateCases = [
  // odd sizes (padding and crop), t = 0 and 1 included
  { name: 'tiny-67x131', model: models.tinyFilm, batch: 1, height: 67, width: 131, seed: 21, times: [0, 0.25, 0.5, 1] },
  // two pairs in one batch, each frame from its own pair
  { name: 'tiny-b2-40x70', model: models.tinyFilm, batch: 2, height: 40, width: 70, seed: 22, times: [0.7] },
  // 8-bit pixels in and out, two pairs
  { name: 'tiny-bytes-b2-37x50', model: models.tinyFilm, batch: 2, height: 37, width: 50, seed: 23, bytes: true, times: [0.5, 0.2] },
  // 2^3 - 1 frames by recursion at t = 0.5
  { name: 'tiny-rec3-61x64', model: models.tinyFilm, batch: 1, height: 61, width: 64, seed: 24, recursions: 3 },
  // batch_dt conventions: [n, 1] (the port's) and [n, 1, 1, 1] (older files), odd sizes, a batch, recursion
  { name: 'tiny-rec2-b2-67x101', model: models.tinyFilm, batch: 2, height: 67, width: 101, seed: 27, recursions: 2 },
  { name: 'tinyOld-rec2-b2-67x101', model: models.tinyFilmOld, batch: 2, height: 67, width: 101, seed: 27, recursions: 2, dtRank: 4 },
  { name: 'tinyOld-b2-45x77', model: models.tinyFilmOld, batch: 2, height: 45, width: 77, seed: 28, times: [0.3, 0.5], dtRank: 4 },
  // our own whole FILM (export.py --interpolator), narrow: odd size, a batch of two, recursion
  { name: 'exported-rec2-b2-75x93', model: models.exported, batch: 2, height: 75, width: 93, seed: 29, recursions: 2 },
  { name: 'exported-133x70', model: models.exported, batch: 1, height: 133, width: 70, seed: 30, times: [0.2, 0.5] },
  // recursionPadding 'prediction': the padded prediction fed back, as the PyTorch port's inference.py
  // does (the 75x93 pairs are those of 'exported-rec2-b2-75x93'); 8-bit pixels at 133x70
  { name: 'exported-rec2-b2-75x93-prediction', model: models.exported, batch: 2, height: 75, width: 93, seed: 29, recursions: 2, recursionPadding: 'prediction' },
  { name: 'exported-rec2-bytes-133x70-prediction', model: models.exported, batch: 1, height: 133, width: 70, seed: 31, bytes: true, recursions: 2, recursionPadding: 'prediction' },
  { name: 'tiny-rec3-61x64-prediction', model: models.tinyFilm, batch: 1, height: 61, width: 64, seed: 24, recursions: 3, recursionPadding: 'prediction' },
  { name: 'tinyFp16-64x96', model: models.tinyFilmFp16, batch: 1, height: 64, width: 96, seed: 25, times: [0.3] },
  // the simpler fixture interpolator the extractor tests load
  { name: 'interpolator-45x45', model: models.interpolator, batch: 1, height: 45, width: 45, seed: 26, times: [0.5] },
];

let interpolateManifest;
function interpolateReference() {
  if (interpolateManifest) return interpolateManifest;
  const file = path.join(dir, 'interpolate.json');
  const casesFile = path.join(dir, 'interpolate-cases.json');
  const script = path.join(__dirname, 'reference_interpolate.py');
  if (stale(file, [script, path.join(__dirname, 'reference_io.py'), __filename, models.tinyFilm, models.tinyFilmOld, models.interpolator, models.exported])) {
    fs.writeFileSync(casesFile, JSON.stringify(interpolateCases));
    sh(python, [script, dir, casesFile]);
  }
  const read = (entry) => (entry.file.endsWith('.u8') ? readBytes(entry) : readTensor(entry));
  interpolateManifest = JSON.parse(fs.readFileSync(file, 'utf8')).map((c) => ({
    ...c,
    in0: readTensor(c.in0),
    in1: readTensor(c.in1),
    bytes0: c.bytes0 && read(c.bytes0),
    bytes1: c.bytes1 && read(c.bytes1),
    frames: c.frames.map(readTensor),
    frameBytes: c.frameBytes && c.frameBytes.map(read),
  }));
  return interpolateManifest;
}

function readBytes({ file, shape }) {
  return { data: new Uint8Array(fs.readFileSync(file)), shape };
}

function readTensor({ file, shape }) {
  const buf = fs.readFileSync(file);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return { data, shape };
}

/**
 * The CPU engines a suite runs over: 'onednn' where the addon was built with it, and 'torchscript'
 * where libtorch is (not in the core build: test/24.core-build checks that it says so).
 * test/32.engine says so (and is pending) where the build has no oneDNN engine.
 */
function cpuEngines() {
  const binding = require('../dist/native').native();
  if (binding.build === 'core') return ['onednn'];
  return binding.onednnCompiledIn ? ['onednn', 'torchscript'] : ['torchscript'];
}

/** max |a - b| / max |b|; the tests' tolerance is 1e-5. */
function relativeError(actual, expected) {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / (scale || 1);
}

/** A deterministic pseudo-random image tensor (mulberry32), for tests without a reference. */
function randomTensor(shape, seed = 1) {
  let a = seed >>> 0;
  const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
  for (let i = 0; i < data.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    data[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return { data, shape };
}

exports.mochaHooks = {
  beforeAll() {
    need('python');
    makeModels();
  },
};

module.exports = Object.assign(exports, {
  root, dir, python, need, models, EXPORTED_ARGS, reference, interpolateReference, relativeError, randomTensor, sh, cpuEngines,
});
