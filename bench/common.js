'use strict';
// Helpers shared by the benchmarks: seeded inputs, timing, medians, a gc hook and markdown tables.
const os = require('node:os');
const v8 = require('node:v8');
const vm = require('node:vm');

/** mulberry32: a fixed-seed generator, so every run and every backend sees the same input. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Tensor4 [n, 3, h, w] of values in [0, 1). */
function randomTensor(n, h, w, seed = 1) {
  const next = rng(seed);
  const data = new Float32Array(n * 3 * h * w);
  for (let i = 0; i < data.length; i++) data[i] = next();
  return { data, shape: [n, 3, h, w] };
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Times each function of `fns` (sync or async) `runs` times after `warmup` untimed rounds, taking
 * them in turn, in a new order each round (a seeded shuffle), so that noise on a shared machine
 * hits all alike and no call always follows the same other one (a rotation kept the cyclic order:
 * the oneDNN extract always came right after the FMA-peak child, and paid for it alone).
 * `between` runs after every call, untimed. `primes[name]`, where given, runs untimed before each
 * call of `name`, followed by `between` too. Returns { name: [ms, ...] }.
 */
async function timeInterleaved(fns, runs, warmup, between = async () => {}, primes = {}) {
  const names = Object.keys(fns);
  const ms = Object.fromEntries(names.map((name) => [name, []]));
  const next = rng(0x5eed);
  for (let round = 0; round < warmup + runs; round++) {
    const order = [...names];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (const name of order) {
      if (primes[name]) {
        await primes[name]();
        await between(); // the timed call starts as every other does: the prime's outputs collected
      }
      const start = now();
      await fns[name]();
      const took = now() - start;
      if (round >= warmup) ms[name].push(took);
      await between();
    }
  }
  return ms;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** global.gc, exposed at run time when node was started without --expose-gc. */
function gcHook() {
  if (typeof global.gc !== 'function') v8.setFlagsFromString('--expose-gc');
  return typeof global.gc === 'function' ? global.gc : vm.runInNewContext('gc');
}

function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function machineLines(extra = []) {
  const cpus = os.cpus();
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpus[0]?.model ?? 'unknown'}, ${cpus.length} cores (availableParallelism ${os.availableParallelism()}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}`,
    `node ${process.version}`,
    ...extra,
    'NOTE: shared, noisy machine; read the ratios and medians, not single runs.',
  ];
}

const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/**
 * The command line's --name value options, from their defaults: a number default makes a number
 * option (checked), a boolean a flag, a string or undefined (no default) a string.
 */
function cliOptions(defaults) {
  const { parseArgs } = require('node:util');
  const options = Object.fromEntries(Object.entries(defaults).map(([name, value]) => [name, typeof value === 'boolean'
    ? { type: 'boolean', default: value }
    : { type: 'string', ...(value === undefined ? {} : { default: String(value) }) }]));
  const { values } = parseArgs({ options });
  for (const [name, value] of Object.entries(defaults)) {
    if (typeof value !== 'number') continue;
    const n = Number(values[name]);
    if (!Number.isFinite(n)) throw new RangeError(`--${name}: expected a number, got '${values[name]}'`);
    values[name] = n;
  }
  return values;
}

module.exports = { rng, randomTensor, now, timeInterleaved, median, gcHook, table, machineLines, fmt, cliOptions };
