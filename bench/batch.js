'use strict';
// The batch pipeline on 640x448 frames: images/s and bytes per frame for today's defaults,
// --dtype float16 --crop, --dtype float16 --save-levels 0,2,4,6, and the pipeline against a
// strictly sequential decode -> extract -> write loop. Configurations take turns chunk by chunk.
const fs = require('node:fs');
const path = require('node:path');
const sharp = require('sharp');

const { FeatureExtractor } = require('..');
const { runBatch, resolveOutputOptions, expandInputs } = require('../dist/batch');
const { rng, median, table, machineLines, fmt } = require('./common');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const FRAMES = Number(arg('frames', 100));
const CHUNK = Number(arg('chunk', 10));
const WIDTH = 640;
const HEIGHT = 448;
const cache = path.join(__dirname, '.cache', 'batch');

// Output defaults: float32, 7 levels, padded, npy (today's bytes).
const configs = {
  'default output, pipelined, --jobs 1': { output: {}, sequential: false, jobs: 1 },
  'default output, sequential loop': { output: {}, sequential: true, jobs: 1 },
  'default output, pipelined, --jobs 2 (default)': { output: {}, sequential: false, jobs: 2 },
  '--dtype float16 --crop, --jobs 1': { output: { dtype: 'float16', crop: true }, sequential: false, jobs: 1 },
  '--dtype float16 --save-levels 0,2,4,6, --jobs 1': { output: { dtype: 'float16', saveLevels: [0, 2, 4, 6] }, sequential: false, jobs: 1 },
};

/** Data bytes a frame should take: channels x level size x element size, summed over saved levels. */
function expectedBytes(output, channels) {
  let bytes = 0;
  for (const l of output.saveLevels) bytes += channels[l] * (HEIGHT >> l) * (WIDTH >> l) * (output.dtype === 'float16' ? 2 : 4);
  return bytes;
}

function dirBytes(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

async function makeFrames() {
  const dir = path.join(cache, `frames-${WIDTH}x${HEIGHT}`);
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < FRAMES; i++) {
    const file = path.join(dir, `frame${String(i).padStart(4, '0')}.png`);
    if (fs.existsSync(file)) continue;
    const next = rng(i + 1);
    const raw = Buffer.alloc(WIDTH * HEIGHT * 3);
    for (let p = 0; p < raw.length; p++) raw[p] = (((p / 3) % WIDTH) * 0.3 + ((p / 3 / WIDTH) | 0) * 0.4 + next() * 60 + i) & 255;
    await sharp(raw, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } }).png({ compressionLevel: 1 }).toFile(file);
  }
  return (await expandInputs([dir])).items.slice(0, FRAMES);
}

/**
 * --rss: peak RSS of the CLI on a 12-megapixel photo (4000x3000 JPEG) with --dtype float16
 * --save-levels 0,2,4,6, against the bytes it writes plus the model file (target: <= ~2.5x).
 */
async function rss() {
  const { spawnSync } = require('node:child_process');
  const photo = path.join(cache, 'photo-4000x3000.jpg');
  if (!fs.existsSync(photo)) {
    fs.mkdirSync(cache, { recursive: true });
    const [w, h] = [4000, 3000];
    const next = rng(7);
    const raw = Buffer.alloc(w * h * 3);
    for (let p = 0; p < raw.length; p++) raw[p] = (((p / 3) % w) * 0.06 + ((p / 3 / w) | 0) * 0.08 + next() * 40) & 255;
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(photo);
  }
  const out = path.join(cache, 'rss-out');
  fs.rmSync(out, { recursive: true, force: true });
  const args = ['extract', photo, '--out', out, '--dtype', 'float16', '--save-levels', '0,2,4,6', '--device', 'cpu'];
  const r = spawnSync('/usr/bin/time', ['-f', 'RSS_KB=%M WALL_S=%e', process.execPath, path.join(__dirname, '..', 'bin', 'film-features.js'), ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`extract failed: ${r.error ?? r.stderr}`);
  const [, kb, wall] = /RSS_KB=(\d+) WALL_S=([\d.]+)/.exec(r.stderr);
  const written = dirBytes(out);
  const model = fs.statSync(path.join(__dirname, '..', 'models', 'film_extractor.pt')).size;
  const peak = Number(kb) * 1024;
  fs.rmSync(out, { recursive: true, force: true });
  console.log(machineLines([`film-features ${args.join(' ')} (photo 4000x3000, padded 4032x3008)`]).join('\n'));
  console.log();
  console.log(table(['bytes written MB', 'model MB', 'peak RSS MB', 'peak / written', '(peak - model) / written', 'wall s'],
    [[fmt(written / 1e6, 0), fmt(model / 1e6, 0), fmt(peak / 1e6, 0), fmt(peak / written, 2), fmt((peak - model) / written, 2), wall]]));
}

async function main() {
  if (process.argv.includes('--rss')) return rss();
  if (process.argv.includes('--child')) return child(arg('child'));
  if (process.argv.includes('--ab')) return ab(arg('ab'));
  const items = await makeFrames();
  const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
  const channels = [64, 192, 448, 960, 960, 960, 960];
  const names = Object.keys(configs);
  const stats = Object.fromEntries(names.map((n) => [n, { seconds: 0, written: 0, bytes: 0, extract: 0, write: 0, decode: 0, rates: [] }]));
  const chunks = Math.ceil(items.length / CHUNK);
  for (let c = 0; c < chunks; c++) {
    const chunk = items.slice(c * CHUNK, (c + 1) * CHUNK);
    for (let k = 0; k < names.length; k++) {
      const name = names[(c + k) % names.length];
      const cfg = configs[name];
      const out = path.join(cache, 'out', String(k));
      fs.rmSync(out, { recursive: true, force: true });
      const output = resolveOutputOptions({ out, ...cfg.output });
      const s = await runBatch(chunk, { extractor: fx, output, sequential: cfg.sequential, jobs: cfg.jobs });
      if (s.failed.length) throw s.failed[0].error;
      const st = stats[name];
      st.seconds += s.seconds;
      st.written += s.written;
      st.bytes += dirBytes(out);
      st.extract += s.ms.extract;
      st.write += s.ms.write;
      st.decode += s.ms.decode;
      st.rates.push(s.framesPerSecond);
      st.output = output;
      fs.rmSync(out, { recursive: true, force: true });
      process.stderr.write(`chunk ${c + 1}/${chunks} ${name}: ${fmt(s.framesPerSecond, 3)} images/s\n`);
    }
  }
  fx.dispose();
  const base = stats[names[0]];
  const seq = stats['default output, sequential loop'];
  const rows = names.map((n) => {
    const st = stats[n];
    const perFrame = st.bytes / st.written;
    const expected = expectedBytes(st.output, channels);
    return [
      n, fmt(st.written / st.seconds, 3), fmt(median(st.rates), 3), fmt(perFrame / 1e6, 2), fmt(expected / 1e6, 2),
      `${fmt((100 * perFrame) / (base.bytes / base.written), 1)}%`, `${fmt((100 * expected) / expectedBytes(base.output, channels), 1)}%`,
      fmt(st.decode / st.written, 0), fmt(st.extract / st.written, 0), fmt(st.write / st.written, 0), `${fmt((100 * st.write) / st.extract, 1)}%`,
    ];
  });
  console.log(machineLines([`frames: ${items.length} of ${WIDTH}x${HEIGHT} PNG, chunks of ${CHUNK} taken in turn; CPU threads: every core`]).join('\n'));
  console.log();
  console.log(table(['configuration', 'images/s', 'median chunk images/s', 'MB/frame measured', 'MB/frame expected (data)', 'bytes vs defaults', 'expected vs defaults',
    'decode ms', 'extract ms', 'write ms', 'write/extract'], rows));
  console.log();
  console.log(`pipelined --jobs 1 / sequential images/s: ${fmt((base.written / base.seconds) / (seq.written / seq.seconds), 2)}x ` +
    `(median chunk ratio ${fmt(median(base.rates) / median(seq.rates), 2)}x)`);
  const j2 = stats['default output, pipelined, --jobs 2 (default)'];
  console.log(`pipelined --jobs 2 / sequential images/s: ${fmt((j2.written / j2.seconds) / (seq.written / seq.seconds), 2)}x ` +
    `(median chunk ratio ${fmt(median(j2.rates) / median(seq.rates), 2)}x)`);
}

// --ab BEFORE_ROOT: this checkout against another built copy of the package (a scratch folder
// holding an older dist/, build/Release, bin/, scripts/, package.json, models/*.pt), in turn, in one
// sitting. Per side and round: a child process runs runBatch (the CLI's pipeline) on a folder of
// 640x448 photos for the main thread's time per photo (event-loop utilisation x wall, the
// `active` ms of performance.eventLoopUtilization()) with default output and with every level in
// float16 (write time / extract time), after one unmeasured photo; the main thread's CPU time
// (/proc) besides, as ELU x wall counts the time a busy machine keeps a ready thread waiting.
// Then `film-features extract` on the same folder, timed from spawn to exit, for the CLI's images/s.
const PHOTOS = path.join(cache, `photos-${WIDTH}x${HEIGHT}`);

/** 640x448 JPEG photos cut from models/sample.png at other places, scales and tones. */
async function makePhotos(count) {
  fs.mkdirSync(PHOTOS, { recursive: true });
  const sample = path.join(__dirname, '..', 'models', 'sample.png');
  const { width, height } = await sharp(sample).metadata();
  const next = rng(99);
  for (let i = 0; i < count; i++) {
    const file = path.join(PHOTOS, `photo${String(i).padStart(3, '0')}.jpg`);
    if (fs.existsSync(file)) continue;
    const scale = 1.2 + next() * 1.5;
    const [w, h] = [Math.round(width * scale), Math.round(height * scale)];
    const big = sharp(sample).resize(Math.max(w, WIDTH + 1), Math.max(h, HEIGHT + 1), { fit: 'fill' });
    const left = Math.floor(next() * (Math.max(w, WIDTH + 1) - WIDTH));
    const top = Math.floor(next() * (Math.max(h, HEIGHT + 1) - HEIGHT));
    const buf = await big.toBuffer();
    await sharp(buf).extract({ left, top, width: WIDTH, height: HEIGHT }).modulate({ brightness: 0.8 + next() * 0.4, hue: Math.round(next() * 60) })
      .flop(i % 2 === 1).jpeg({ quality: 88 }).toFile(file);
  }
  return PHOTOS;
}

/** CPU ms the main thread (its task is the process id) has run, from /proc (10 ms ticks); null elsewhere. */
function mainThreadCpuMs() {
  try {
    const fields = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, USER_HZ 100
  } catch {
    return null;
  }
}

async function child(root) {
  const { FeatureExtractor: FX } = require(root);
  const b = require(path.join(root, 'dist', 'batch'));
  const { performance } = require('node:perf_hooks');
  const items = (await b.expandInputs([PHOTOS])).items;
  const fx = await FX.load(undefined, { device: 'cpu' });
  const result = {};
  // One photo first, unmeasured: JIT, the model file's sha256 (once a process) and first-run allocations.
  const warm = path.join(cache, 'out', `child-${process.pid}-warm`);
  await b.runBatch(items.slice(0, 1), { extractor: fx, output: b.resolveOutputOptions({ out: warm }) });
  fs.rmSync(warm, { recursive: true, force: true });
  for (const [name, extra] of [['default', {}], ['float16', { dtype: 'float16' }]]) {
    const out = path.join(cache, 'out', `child-${process.pid}-${name}`);
    fs.rmSync(out, { recursive: true, force: true });
    const output = b.resolveOutputOptions({ out, ...extra });
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = mainThreadCpuMs();
    const t0 = performance.now();
    const s = await b.runBatch(items, { extractor: fx, output });
    const wall = performance.now() - t0;
    const elu = performance.eventLoopUtilization(elu0);
    const cpu = cpu0 === null ? NaN : mainThreadCpuMs() - cpu0;
    if (s.failed.length) throw s.failed[0].error;
    result[name] = {
      frames: s.written, wallMs: wall, mainMs: elu.utilization * wall, mainMsPerPhoto: (elu.utilization * wall) / s.written, mainCpuMsPerPhoto: cpu / s.written,
      extractMs: s.ms.extract, writeMs: s.ms.write, writeShare: s.ms.write / s.ms.extract, imagesPerSecond: s.framesPerSecond,
    };
    fs.rmSync(out, { recursive: true, force: true });
  }
  fx.dispose();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function cli(root, frames, extra = []) {
  const { spawnSync } = require('node:child_process');
  const out = path.join(cache, 'out', `cli-${path.basename(root)}`);
  fs.rmSync(out, { recursive: true, force: true });
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'film-features.js'), 'extract', PHOTOS, '--out', out, '--device', 'cpu', ...extra],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${root}: extract failed: ${r.stderr}`);
  fs.rmSync(out, { recursive: true, force: true });
  return frames / seconds;
}

async function ab(beforeRoot) {
  const { spawnSync } = require('node:child_process');
  const rounds = Number(arg('rounds', 3));
  const count = Number(arg('photos', 12));
  await makePhotos(count);
  const sides = { before: path.resolve(beforeRoot), after: path.join(__dirname, '..') };
  const got = { before: [], after: [] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? ['after', 'before'] : ['before', 'after'];
    for (const side of order) {
      const c = spawnSync(process.execPath, ['--expose-gc', __filename, '--child', sides[side]], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (c.status !== 0) throw new Error(`${side}: child failed`);
      got[side].push({ ...JSON.parse(c.stdout.trim().split('\n').pop()) });
    }
    for (const side of order) got[side][r].cli = cli(sides[side], count);
    for (const side of order) got[side][r].cli16 = cli(sides[side], count, ['--dtype', 'float16']);
    process.stderr.write(`round ${r + 1}/${rounds}: ${order.map((s) => `${s} ${fmt(got[s][r].cli, 3)} images/s (CLI)`).join(', ')}\n`);
  }
  const med = (side, f) => median(got[side].map(f));
  const rows = [
    ['main-thread ms per photo, default output (ELU x wall / photos)', (g) => g.default.mainMsPerPhoto, 1],
    ['main-thread ms per photo, every level float16', (g) => g.float16.mainMsPerPhoto, 1],
    ['main-thread CPU ms per photo, default output (/proc task stat)', (g) => g.default.mainCpuMsPerPhoto, 1],
    ['main-thread CPU ms per photo, every level float16', (g) => g.float16.mainCpuMsPerPhoto, 1],
    ['write / extract, every level float16', (g) => 100 * g.float16.writeShare, 1, '%'],
    ['extract ms per photo, every level float16 (summed over frames in flight)', (g) => g.float16.extractMs / g.float16.frames, 0],
    ['write ms per photo, every level float16', (g) => g.float16.writeMs / g.float16.frames, 0],
    ['runBatch images/s, default output', (g) => g.default.imagesPerSecond, 3],
    ['CLI images/s (`film-features extract DIR --device cpu`, spawn to exit)', (g) => g.cli, 3],
    ['CLI images/s, `--dtype float16`', (g) => g.cli16, 3],
  ].map(([name, f, digits, unit = '']) => {
    const [b, a] = [med('before', f), med('after', f)];
    return [name, `${fmt(b, digits)}${unit}`, `${fmt(a, digits)}${unit}`, fmt(a / b, 2)];
  });
  console.log(machineLines([`before: ${sides.before}; after: ${sides.after}`,
    `${count} JPEG photos ${WIDTH}x${HEIGHT} cut from models/sample.png; ${rounds} rounds, sides in turn; medians over rounds; CPU, every core, --jobs 2`]).join('\n'));
  console.log();
  console.log(table(['measure', 'before', 'after', 'after / before'], rows));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
