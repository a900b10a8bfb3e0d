'use strict';
// Child script: a worker is terminate()d while its load or extracts are in flight, 20 times in one
// process; then the main thread extracts again. Prints the results as JSON; must exit 0.
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { FeatureExtractor } = require(path.resolve(__dirname, '../..'));
const { randomTensor } = require('../fixtures');

const model = process.argv[2];
const image = randomTensor([1, 3, 48, 64], 7);
const script = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { FeatureExtractor } = require(${JSON.stringify(path.resolve(__dirname, '../..'))});
  (async () => {
    const load = FeatureExtractor.load(workerData.model, { device: 'cpu', threads: 1 });
    if (workerData.phase === 'load') parentPort.postMessage('busy');
    const fx = await load;
    for (let i = 0; i < 3; i++) fx.extract(workerData.image, { levels: 4 }).catch(() => {});
    parentPort.postMessage('busy');
  })();`;

function once(phase) {
  return new Promise((resolve, reject) => {
    const w = new Worker(script, { eval: true, workerData: { model, image, phase } });
    w.on('message', () => w.terminate());
    w.on('error', reject);
    w.on('exit', resolve);
  });
}

(async () => {
  const fx = await FeatureExtractor.load(model, { device: 'cpu' });
  const before = await fx.extract(image, { levels: 4 });
  for (let i = 0; i < 20; i++) await once(i % 4 === 0 ? 'load' : 'extract');
  const after = await fx.extract(image, { levels: 4 });
  const counters = FeatureExtractor.counters();
  process.stdout.write(JSON.stringify({
    same: before.every((l, i) => Buffer.compare(Buffer.from(l.data.buffer), Buffer.from(after[i].data.buffer)) === 0),
    counters,
  }));
})().catch((err) => {
  console.error(err);
  process.exit(3);
});
