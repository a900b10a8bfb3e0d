'use strict';
// Throughput: 8 extracts of 256x256 sent at once (Promise.all) vs one after another, with one and
// two FeatureExtractors. Usage: node bench/throughput.js [--quick] [--rounds N] [--count 8] [--size 256]
const { parseArgs } = require('node:util');

const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { randomTensor, timeInterleaved, median, gcHook, table, machineLines, fmt } = require('./common');

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    count: { type: 'string', default: '8' },
    size: { type: 'string', default: '256' },
  },
});
const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
const count = Number(values.count);
const size = Number(values.size);

// threads: per extractor (0 = every core); the scheduler admits runs while their threads fit the cores.
const CONFIGS = [
  { name: '1 extractor, threads 0 (all cores)', extractors: 1, threads: 0 },
  { name: '1 extractor, threads 1', extractors: 1, threads: 1 },
  { name: '2 extractors, threads 0 each', extractors: 2, threads: 0 },
  { name: '2 extractors, threads 1 each', extractors: 2, threads: 1 },
];

async function main() {
  const gc = gcHook();
  const images = Array.from({ length: count }, (_, i) => randomTensor(1, size, size, i + 1));
  const rows = [];
  for (const config of CONFIGS) {
    const fxs = [];
    for (let i = 0; i < config.extractors; i++) {
      fxs.push(await FeatureExtractor.load(undefined, { device: 'cpu', threads: config.threads }));
    }
    const job = (i) => fxs[i % fxs.length].extract(images[i], { levels: 7 });
    const modes = {
      sequential: async () => {
        for (let i = 0; i < count; i++) await job(i);
      },
      concurrent: () => Promise.all(images.map((_, i) => job(i))),
    };
    const ms = await timeInterleaved(modes, rounds, 1, gc);
    const rate = Object.fromEntries(Object.entries(ms).map(([mode, t]) => [mode, (1000 * count) / median(t)]));
    console.error(`${config.name}: ${fmt(rate.sequential, 2)} images/s one after another, ${fmt(rate.concurrent, 2)} at once`);
    fxs.forEach((fx) => fx.dispose());
    rows.push([config.name, fmt(rate.sequential, 2), fmt(rate.concurrent, 2), fmt(rate.concurrent / rate.sequential, 2)]);
  }

  console.log(machineLines([
    `libtorch ${native().torchVersion}; ${count} extracts of ${size}x${size} (7 levels) per round; ` +
      `medians of ${rounds} rounds after 1 warm-up round, the two modes taken in turn`,
  ]).join('\n'));
  console.log();
  console.log(table(['configuration', 'one after another, images/s', 'Promise.all, images/s', 'ratio'], rows));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
