'use strict';
// GPU benchmark: 1920x1088 frames, 7 levels, batch 1 and 8, fp32 and fp16, pyramid built on the
// device. Reports ms per frame and TFLOP/s; the floor is the fp16 tensor-core peak (an H100 does
// about 800 TFLOP/s dense fp16, so 1.14 TFLOP per frame is about 1.4 ms). Goal: <= 3 ms per frame
// at fp16, batch 8. The "8 x 1, micro-batched" rows send 8 single-frame calls at once to an
// extractor with micro-batching on (2 ms, maxBatch 8); the other rows run with it off.
// Usage: node bench/gpu.js [--runs N] [--device cuda:0] [--peak-tflops 800]
const { parseArgs } = require('node:util');

const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { randomTensor, timeInterleaved, median, table, machineLines, fmt } = require('./common');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    device: { type: 'string', default: 'cuda:0' },
    'peak-tflops': { type: 'string', default: '800' },
  },
});
const H = 1088;
const W = 1920;
const FLOP_PER_PIXEL = 2 * 272e3; // 2 x the extractor's multiply-adds per input pixel, 7 levels

async function main() {
  if (!FeatureExtractor.devices().includes(values.device)) {
    console.log(`no ${values.device} here (devices: ${FeatureExtractor.devices().join(', ')}); nothing to measure`);
    return;
  }
  const runs = Number(values.runs);
  const peak = Number(values['peak-tflops']);
  const rows = [];
  for (const half of [false, true]) {
    const fx = await FeatureExtractor.load(undefined, { device: values.device, half, batchWindowMs: 0 });
    const batcher = await FeatureExtractor.load(undefined, { device: values.device, half, batchWindowMs: 2, maxBatch: 8 });
    const single = Array.from({ length: 8 }, (_, i) => randomTensor(1, H, W, 100 + i));
    const setups = [
      { name: '1', frames: 1, call: ((t) => () => fx.extract(t, { levels: 7 }))(randomTensor(1, H, W, 1)) },
      { name: '8', frames: 8, call: ((t) => () => fx.extract(t, { levels: 7 }))(randomTensor(8, H, W, 8)) },
      { name: '8 x 1, micro-batched', frames: 8, call: () => Promise.all(single.map((t) => batcher.extract(t, { levels: 7 }))) },
    ];
    for (const { name, frames, call } of setups) {
      const ms = await timeInterleaved({ run: call }, runs, 2);
      const perFrame = median(ms.run) / frames;
      const tflops = (FLOP_PER_PIXEL * H * W) / (perFrame / 1000) / 1e12;
      rows.push([half ? 'fp16' : 'fp32', name, fmt(median(ms.run), 1), fmt(perFrame, 2), fmt(tflops, 1),
        fmt((FLOP_PER_PIXEL * H * W) / (peak * 1e12) * 1000, 2)]);
    }
    fx.dispose();
    batcher.dispose();
    FeatureExtractor.releaseCachedMemory();
  }
  console.log(machineLines([`libtorch ${native().torchVersion}; ${values.device}; 1920x1088, 7 levels; medians of ${runs} runs`]).join('\n'));
  console.log();
  console.log(table(['dtype', 'batch', 'ms per call', 'ms per frame', 'TFLOP/s', `floor ms at ${peak} TFLOP/s`], rows));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
