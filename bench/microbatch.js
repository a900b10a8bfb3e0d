'use strict';
// Micro-batching on the CPU: N concurrent extracts (Promise.all) of SIZExSIZE images, 7 levels, with
// micro-batching off and on (window 2 ms, a few maxBatch values), one FeatureExtractor per set-up,
// all loaded at once and timed in turn. Reports images/s (medians) and the ratio to "off".
// Usage: node bench/microbatch.js [--rounds 5] [--count 16] [--size 256] [--threads 0] [--device cpu]
const fs = require('node:fs');

const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { randomTensor, timeInterleaved, median, gcHook, table, machineLines, fmt, cliOptions } = require('./common');

const { rounds, count, size, threads, device } = cliOptions({ rounds: 5, count: 16, size: 256, threads: 0, device: 'cpu' });

const CONFIGS = [
  { name: 'off (batchWindowMs 0)', batchWindowMs: 0 },
  { name: 'on, 2 ms, maxBatch 4', batchWindowMs: 2, maxBatch: 4 },
  { name: 'on, 2 ms, maxBatch 8', batchWindowMs: 2, maxBatch: 8 },
  { name: 'on, 2 ms, maxBatch 16', batchWindowMs: 2, maxBatch: 16 },
];

function isa() {
  try {
    const flags = /^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))[1].split(' ');
    return ['avx512f', 'avx512_bf16', 'amx_tile', 'avx2', 'fma'].filter((f) => flags.includes(f)).join(' ') || 'baseline';
  } catch {
    return 'unknown';
  }
}

async function main() {
  const gc = gcHook();
  const images = Array.from({ length: count }, (_, i) => randomTensor(1, size, size, i + 1));
  const fxs = {};
  for (const config of CONFIGS) {
    const { name, ...options } = config;
    fxs[name] = await FeatureExtractor.load(undefined, { device, threads, ...options });
  }
  const fns = Object.fromEntries(Object.entries(fxs).map(([name, fx]) =>
    [name, () => Promise.all(images.map((image) => fx.extract(image, { levels: 7 })))]));
  const ms = await timeInterleaved(fns, rounds, 1, async () => {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  });
  const off = median(ms[CONFIGS[0].name]);
  const rows = CONFIGS.map(({ name }) => {
    const t = median(ms[name]);
    return [name, fmt(t, 0), fmt((1000 * count) / t, 2), fmt(off / t, 2),
      `${fmt(Math.min(...ms[name]), 0)}-${fmt(Math.max(...ms[name]), 0)}`];
  });
  Object.values(fxs).forEach((fx) => fx.dispose());

  console.log(machineLines([
    `ISA: ${isa()}; libtorch ${native().torchVersion}; device ${device}, threads ${threads || 'all'}`,
    `${count} concurrent extracts of ${size}x${size} (7 levels) per round; medians of ${rounds} rounds after ` +
      '1 warm-up round, set-ups taken in turn (order rotating)',
  ]).join('\n'));
  console.log();
  console.log(table(['micro-batching', 'ms per round', 'images/s', 'vs off', 'range ms'], rows));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
