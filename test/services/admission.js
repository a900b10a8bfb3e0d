'use strict';
// Child script: 4 worker threads, each with its own extractor asking for every core, run 4
// extracts each at once. Prints the process-wide counters as JSON.
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { FeatureExtractor } = require(path.resolve(__dirname, '../..'));

const model = process.argv[2];
const script = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { FeatureExtractor } = require(${JSON.stringify(path.resolve(__dirname, '../..'))});
  (async () => {
    const fx = await FeatureExtractor.load(workerData.model, { device: 'cpu', threads: 0 });
    const data = new Float32Array(3 * 128 * 128).fill(0.5);
    await Promise.all([0, 1, 2, 3].map(() => fx.extract({ data, shape: [1, 3, 128, 128] })));
    parentPort.postMessage('done');
  })();`;

(async () => {
  // Samples the counters while the workers run, from the main thread.
  let sampledMax = 0;
  const sampler = setInterval(() => { sampledMax = Math.max(sampledMax, FeatureExtractor.counters().threads); }, 5);
  await Promise.all([0, 1, 2, 3].map(() => new Promise((resolve, reject) => {
    const w = new Worker(script, { eval: true, workerData: { model } });
    w.on('error', reject);
    w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
  })));
  clearInterval(sampler);
  const counters = FeatureExtractor.counters();
  process.stdout.write(JSON.stringify({ counters, sampledMax, cpus: os.availableParallelism() }));
})();
