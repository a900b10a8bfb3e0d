'use strict';
// Where the oneDNN engine's time goes: runs bench/cpp/forward_loop with ONEDNN_VERBOSE=1, takes the
// median time of each primitive over the warm runs, and sums them by kind (convolution, the
// 3-channel first convolution of each level, reorder, pooling).
// Usage: node bench/profile.js [--size 256|HxW] [--batch 1] [--threads 2] [--repeats 9]
//   [--precision fp32|bf16] [--layout nchw|nhwc] [--detail]
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { median, table, fmt, cliOptions } = require('./common');

const KINDS = ['first convolution', 'convolution', 'Winograd matmul', 'reorder', 'pooling', 'other'];

/** 2 x multiply-adds of a convolution from its verbose problem string (mb1_ic3oc64_ih256oh256kh3...). */
function convFlops(problem) {
  const get = (key) => Number((new RegExp(`${key}(\\d+)`).exec(problem) ?? [])[1] ?? 1);
  return 2 * get('mb') * get('ic') * get('oc') * get('oh') * get('ow') * get('kh') * get('kw');
}

function kindOf(primitive, problem) {
  // The first convolution of a level reads the image: 3 channels, or a few more zero-padded ones.
  if (primitive === 'convolution') return Number((/(?:^|_)ic(\d+)oc/.exec(problem) ?? [])[1]) <= 16 ? 'first convolution' : 'convolution';
  if (primitive === 'reorder') return 'reorder';
  if (primitive.startsWith('pooling')) return 'pooling';
  // float32 3x3 convolutions by Winograd: their batched products (the tile transforms around them are not oneDNN's, so not seen here).
  if (primitive === 'matmul') return 'Winograd matmul';
  return 'other';
}

/**
 * Parses oneDNN's verbose exec lines (2.x: `onednn_verbose,exec,cpu,KIND,IMPL,...,PROBLEM,MS`; 3.x
 * adds fields before `exec`): [{ primitive, impl, problem, ms }].
 */
function parseVerbose(text) {
  const ops = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('onednn_verbose,')) continue;
    const f = line.split(',');
    const at = f.indexOf('exec');
    if (at < 0 || f[at + 1] !== 'cpu') continue;
    ops.push({ primitive: f[at + 2], impl: f[at + 3], problem: f[f.length - 2], ms: Number(f[f.length - 1]) });
  }
  return ops;
}

/**
 * Profiles `repeats` warm runs of the engine in forward_loop (its first and second calls, and the
 * weights' reorders at load, are not counted). Returns { isa, version, wall: ms per run (median), ops: per primitive in run
 * order { primitive, impl, problem, ms (median), flops }, kinds: { kind: { ms, flops, count } } }.
 */
function profile(binary, model, { threads = 2, shape = [1, 3, 256, 256], levels = 7, repeats = 9, precision = 'fp32', layout = 'nchw' } = {}) {
  const [n, , h, w] = shape;
  const args = [model, threads, n, h, w, levels, repeats, 'onednn', precision, layout].map(String);
  const r = spawnSync(binary, args, { encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, ONEDNN_VERBOSE: '1' } });
  if (r.status !== 0) throw new Error(`forward_loop failed (${r.status ?? r.signal}): ${r.stderr}`);
  const marker = r.stdout.indexOf('forward_loop: timed calls');
  if (marker < 0) throw new Error('forward_loop printed no marker: rebuild bench/cpp');
  const all = parseVerbose(r.stdout.slice(marker));
  const perRun = all.length / repeats;
  if (!Number.isInteger(perRun) || perRun === 0) throw new Error(`forward_loop: ${all.length} primitive runs for ${repeats} calls`);
  const summary = JSON.parse(r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop());
  const version = (/oneDNN v([\d.]+)/.exec(r.stdout) ?? [])[1] ?? 'unknown';
  const ops = [];
  for (let i = 0; i < perRun; i++) {
    const samples = [];
    for (let run = 0; run < repeats; run++) samples.push(all[run * perRun + i].ms);
    const op = all[i];
    ops.push({ ...op, ms: median(samples), flops: op.primitive === 'convolution' ? convFlops(op.problem) : 0 });
  }
  const kinds = Object.fromEntries(KINDS.map((k) => [k, { ms: 0, flops: 0, count: 0 }]));
  for (const op of ops) {
    const k = kinds[kindOf(op.primitive, op.problem)];
    k.ms += op.ms;
    k.flops += op.flops;
    k.count += 1;
  }
  return { isa: summary.isa, version, first: summary.first, wall: median(summary.ms), ops, kinds };
}

const PROFILE_HEADER = ['size', 'batch', 'threads', 'precision', 'layout', 'run ms (wall, verbose on)', 'primitives ms',
  ...KINDS.flatMap((k) => [`${k} ms (%)`, ...(k.endsWith('convolution') ? [`${k} GFLOP/s`] : [])])];

/** One row of the breakdown table for a profile() result. */
function profileRow(label, p) {
  const total = KINDS.reduce((sum, k) => sum + p.kinds[k].ms, 0);
  const cells = [];
  for (const k of KINDS) {
    const { ms, flops } = p.kinds[k];
    cells.push(`${fmt(ms)} (${fmt((100 * ms) / total)}%)`);
    if (k.endsWith('convolution')) cells.push(fmt(flops / ms / 1e6));
  }
  return [...label, fmt(p.wall), fmt(total), ...cells];
}

function main() {
  const values = cliOptions({ size: '256', batch: 1, threads: 2, repeats: 9, precision: 'fp32', layout: 'nchw', detail: false });
  const m = /^(\d+)(?:x(\d+))?$/.exec(values.size);
  if (!m) throw new RangeError(`--size: expected N or HxW, got '${values.size}'`);
  const [h, w] = [Number(m[1]), Number(m[2] ?? m[1])];
  const root = path.resolve(__dirname, '..');
  const binary = path.join(__dirname, '.cache', 'cpp-build', 'forward_loop');
  const { batch, threads } = values;
  const p = profile(binary, path.join(root, 'models', 'film_extractor.pt'), {
    threads, shape: [batch, 3, h, w], repeats: values.repeats, precision: values.precision, layout: values.layout,
  });
  console.log(`oneDNN ${p.version}, ISA ${p.isa}, CPU ${require('node:os').cpus()[0]?.model}; medians of ${values.repeats} warm runs`);
  console.log(table(PROFILE_HEADER, [profileRow([`${h}x${w}`, batch, threads, values.precision, values.layout], p)]));
  if (values.detail) {
    console.log();
    console.log(table(['#', 'primitive', 'implementation', 'problem', 'ms', 'GFLOP/s'],
      p.ops.map((op, i) => [i, op.primitive, op.impl, op.problem, op.ms.toFixed(3), op.flops ? fmt(op.flops / op.ms / 1e6) : ''])));
  }
}

if (require.main === module) main();

module.exports = { profile, profileRow, PROFILE_HEADER, parseVerbose, KINDS };
