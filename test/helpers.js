'use strict';
// What several test files share: the CLI run as a child process, polling, and a .npy reader.
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { root, interpolateReference, relativeError } = require('./fixtures');

const cli = path.join(root, 'bin', 'film-features.js');

/**
 * Runs `film-features ARGS` to the end; resolves to { status, signal, stdout, stderr }.
 * stdin is closed at once (or fed `stdin`); onSpawn(child) sees the child first.
 */
function runCli(args, { cwd = root, env = process.env, stdin = '', onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    child.stdin.end(stdin);
    onSpawn?.(child);
  });
}

/**
 * A long-running `film-features ARGS` (a worker) whose output is kept; `exited` resolves to
 * { code, signal }, `waitFor(re)` to the first match in stdout (fresh: only output after the call).
 */
function startCli(args, env = {}) {
  const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const proc = { child, stdout: '', stderr: '', waiters: [] };
  const scan = () => {
    proc.waiters = proc.waiters.filter((w) => {
      const m = proc.stdout.slice(w.from).match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  };
  child.stdout.on('data', (d) => { proc.stdout += d; scan(); });
  child.stderr.on('data', (d) => (proc.stderr += d));
  proc.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  proc.waitFor = (re, { ms = 60000, fresh = false } = {}) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} in ${ms} ms:\n${proc.stdout}${proc.stderr}`)), ms).unref();
    const from = fresh ? proc.stdout.lastIndexOf('\n') + 1 : 0;
    proc.waiters.push({ re, from, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    scan();
  });
  return proc;
}

/** startCli run to the end: resolves to { code, signal, stdout, stderr }. */
async function finishCli(args, env) {
  const p = startCli(args, env);
  const { code, signal } = await p.exited;
  return { code, signal, stdout: p.stdout, stderr: p.stderr };
}

/** Resolves to check()'s first truthy value, asked every 100 ms; throws naming `what` after `ms`. */
async function pollUntil(what, check, ms = 90000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** .npy v1.0 reader for '<f4' and '<f2' (halves widened to float32 here, bit by bit). */
function readNpy(file) {
  const buf = fs.readFileSync(file);
  assert.equal(buf.toString('latin1', 0, 6), '\x93NUMPY');
  assert.deepEqual([buf[6], buf[7]], [1, 0]);
  const length = buf.readUInt16LE(8);
  assert.equal((10 + length) % 64, 0, 'header padded to a multiple of 64 bytes');
  const header = buf.toString('latin1', 10, 10 + length);
  const m = header.match(/^\{'descr': '<(f[24])', 'fortran_order': False, 'shape': \(([\d, ]+)\), \} *\n$/);
  assert.ok(m, `unexpected header ${JSON.stringify(header)}`);
  const shape = m[2].split(',').filter((s) => s.trim()).map(Number);
  const body = buf.subarray(10 + length);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = m[1] === 'f4'
    ? new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength))
    : Float32Array.from({ length: n }, (_, i) => halfToFloat(body.readUInt16LE(2 * i)));
  assert.equal(data.length, n);
  return { dtype: m[1], shape, data };
}

function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * For a describe() of Interpolator tests: `cases`, the interpolation references by name (filled
 * before its tests), and load(file), each file loaded once (CPU, 2 threads) and disposed after them.
 */
function interpolatorSuite() {
  const { Interpolator } = require('..');
  const cases = {};
  const loaded = new Map();
  before(() => Object.assign(cases, Object.fromEntries(interpolateReference().map((c) => [c.name, c]))));
  after(() => loaded.forEach((film) => film.dispose()));
  const load = async (file) => {
    if (!loaded.has(file)) loaded.set(file, await Interpolator.load(file, { device: 'cpu', threads: 2 }));
    return loaded.get(file);
  };
  return { cases, load };
}

/**
 * For a describe() of fleet tests: queue(name, url), a BullMQ Queue, and track(proc), a startCli
 * process; after its tests, processes still running are killed and the queues closed.
 */
function fleetSuite() {
  const { Queue } = require('bullmq');
  const queues = [];
  const children = [];
  after(async () => {
    for (const p of children) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(children.map((p) => p.exited));
    await Promise.all(queues.map((q) => q.close()));
  });
  return {
    queue: (name, url) => queues[queues.push(new Queue(name, { connection: { url } })) - 1],
    track: (proc) => children[children.push(proc) - 1],
  };
}

/**
 * What a test needs from this machine (a tool, root, a registry) asserted, never skipped: a missing
 * one fails the run, naming it and how to get it. `npm install` in this checkout (scripts/install.js)
 * and .ci/run install every Debian package the suite needs, so only a machine set up by hand fails.
 * Only optional hardware (CUDA, an ISA) may turn a test pending. Each of `needs` is
 * [ok, what, how], ok a boolean or a function; the first missing one throws.
 */
function requireHere(...needs) {
  for (const [ok, what, how] of needs) {
    if (!(typeof ok === 'function' ? ok() : ok)) {
      throw new assert.AssertionError({ message: `this test needs ${what}, which is missing here: ${how}` });
    }
  }
}

/** True when `cmd args` runs and exits 0 (without the ASan runtime test:asan preloads). */
function runs(cmd, args = ['--version']) {
  const { LD_PRELOAD, ...env } = process.env;
  return spawnSync(cmd, args, { stdio: 'ignore', env, timeout: 30000 }).status === 0;
}

/** requireHere's checks shared by several files. */
const needs = {
  root: () => [process.getuid?.() === 0, 'root (a private mount namespace needs it)', 'run the tests as root, as CI does'],
  unshare: () => [() => runs('unshare', ['-m', 'true']), 'a working `unshare -m`', 'apt-get install util-linux, and run as root'],
  patchelf: () => [() => runs('patchelf'), 'patchelf', 'apt-get install patchelf (npm install in this checkout does)'],
  cc: () => [() => runs('cc'), 'a C compiler (cc)', 'apt-get install g++ (npm install in this checkout does)'],
  strace: () => [() => runs('strace', ['-V']), 'strace', 'apt-get install strace (npm install in this checkout does)'],
};

/**
 * The binding's load() as FeatureExtractor.load calls it: the file's weights read by our reader
 * (lib/model-file) first, for tests that drive the binding itself.
 */
async function loadNative(file, device = 'cpu', threads = 1, half = false, engine = 'auto', precision = 'fp32') {
  const { native } = require('../dist/native');
  const { readExtractorWeights } = require('../dist/model-file');
  const w = await readExtractorWeights(file);
  return native().load(file, device, threads, half, engine, precision, {
    source: w.source, format: w.format, dtype: w.dtype, origin: w.origin, channels: w.channels, stages: w.stages,
  });
}

/** The binding's loadInterpolator() as Interpolator.load calls it, the file read by our reader first. */
async function loadNativeInterpolator(file, device = 'cpu', threads = 1, half = false, engine = 'auto') {
  const { native } = require('../dist/native');
  const { readModelFile, toFloat32 } = require('../dist/model-file');
  const model = await readModelFile(file);
  const tensors = {};
  for (const [name, t] of model.tensors) {
    if (/^(extract|predict_flow|fuse)\./.test(name) && t.shape.length > 0) tensors[name] = { data: toFloat32(t), shape: t.shape };
  }
  const levels = model.attributes.get('pyramid_levels') ?? 7;
  return native().loadInterpolator(file, device, threads, half, engine, { format: model.format, dtype: 'float32', levels, tensors });
}

// Interpolated frames against a reference (tests 65): float32 within 1e-5 relative, and 8-bit ones
// equal but for rounding at .5.
const FRAME_TOLERANCE = 1e-5;

function assertClose(actual, expected, what) {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const err = relativeError(actual.data, expected.data);
  assert.ok(err <= FRAME_TOLERANCE, `${what}: relative error ${err} > ${FRAME_TOLERANCE}`);
}

/** Bytes equal to the reference's but for rounding at .5: at most 1 apart, almost all equal. */
function assertBytesClose(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let off = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(d <= 1, `${what}: byte ${i} is ${actual[i]}, reference ${expected[i]}`);
    if (d) off++;
  }
  assert.ok(off <= expected.length * 1e-3, `${what}: ${off} of ${expected.length} bytes off by one`);
}

module.exports = { assertClose, assertBytesClose, loadNative, loadNativeInterpolator, requireHere, needs, cli, runCli, startCli, finishCli, pollUntil, readNpy, interpolatorSuite, fleetSuite };
