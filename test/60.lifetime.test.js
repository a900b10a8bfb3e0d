'use strict';
// Lifetimes and concurrency: dispose, garbage collection, many runs at once, worker_threads.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { loadNative } = require('./helpers');
const { models, randomTensor } = require('./fixtures');

const settle = () => new Promise((r) => setImmediate(r));

async function collect() {
  for (let i = 0; i < 4; i++) {
    global.gc();
    await settle();
  }
}

describe('lifetimes', () => {
  const image = randomTensor([1, 3, 32, 48], 31);
  let expected;
  before(async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    expected = await fx.extract(image, { levels: 4 });
    fx.dispose();
  });
  const same = (out) => out.forEach((level, i) => assert.deepEqual(level.data, expected[i].data));

  it('extract after dispose rejects with a clear Error; dispose is idempotent', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    fx.dispose();
    fx.dispose();
    await assert.rejects(fx.extract(image), (err) => err.constructor === Error && /disposed/.test(err.message));
    await assert.rejects(fx.extractPyramid([image]), /disposed/);
  });

  it('dispose while runs are in flight: started runs finish, queued ones reject cleanly', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    // Each run takes one core at least, so at most `cores` run at once: the 4 more wait in the queue.
    const runs = Array.from({ length: FeatureExtractor.counters().cores + 4 }, () => fx.extract(image, { levels: 4 }).then(
      (out) => ({ out }), (err) => ({ err })));
    while (FeatureExtractor.counters().running === 0) await settle(); // the first has started
    fx.dispose();
    const results = await Promise.all(runs);
    assert.ok(results[0].out, 'the first run had started and finishes');
    assert.ok(results.some((r) => r.err), 'queued runs were not all started');
    for (const r of results) {
      if (r.out) same(r.out);
      else assert.equal(r.err.code, 'ERR_FILM_DISPOSED');
    }
  });

  it('the native extractor garbage-collected while a run is in flight', async () => {
    let handle = await loadNative(models.default, 'cpu', 1, false);
    const run = handle.run([image], 4).promise;
    handle = null;
    await collect();
    same(await run);
    await collect();
  });

  it('32 concurrent extracts over two extractors equal the same calls one by one, bit for bit', async () => {
    const a = await FeatureExtractor.load(models.default, { device: 'cpu', threads: 1 });
    const b = await FeatureExtractor.load(models.small, { device: 'cpu', threads: 2 });
    const images = Array.from({ length: 32 }, (_, i) => randomTensor([1, 3, 16 + (i % 3) * 8, 24], 100 + i));
    const pick = (i) => (i % 2 ? b : a);
    const one = [];
    for (let i = 0; i < 32; i++) one.push(await pick(i).extract(images[i], { levels: 3 }));
    const all = await Promise.all(images.map((im, i) => pick(i).extract(im, { levels: 3 })));
    all.forEach((out, i) => out.forEach((level, l) => {
      assert.deepEqual(level.shape, one[i][l].shape);
      assert.deepEqual(level.data, one[i][l].data, `image ${i} level ${l}`);
    }));
    a.dispose();
    b.dispose();
  });

  it('keeps the event loop free during a long extract: the JS thread does under 10% of its CPU work', async () => {
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    const big = randomTensor([1, 3, 384, 384], 41);
    // Event-loop utilization counts the time the JS thread spends outside its poll: the work done on
    // it. (Timer lag would also count the OS preempting it for the run's own threads.) Against the
    // CPU time of all threads, not the wall time: the ratio holds on a fast or a slow machine alike.
    // (About 2-4% on 1 or 2 shared cores, where the JS thread's turns are stretched; 100% if run on it.)
    const ticks = setInterval(() => {}, 10);
    const started = performance.now();
    const cpu = process.cpuUsage();
    const before = performance.eventLoopUtilization();
    await fx.extract(big, { levels: 7 });
    const { active } = performance.eventLoopUtilization(before);
    const { user, system } = process.cpuUsage(cpu);
    const ms = performance.now() - started;
    clearInterval(ticks);
    fx.dispose();
    const cpuMs = (user + system) / 1000;
    assert.ok(active < 0.1 * cpuMs, `the JS thread was busy ${active.toFixed(1)} ms of ${cpuMs.toFixed(0)} ms CPU (${ms.toFixed(0)} ms wall)`);
  });

  it('loads and runs inside two worker_threads at once, then exits cleanly', async () => {
    const script = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { FeatureExtractor } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
      (async () => {
        const fx = await FeatureExtractor.load(workerData.model, { device: 'cpu', threads: 1 });
        const out = await fx.extract(workerData.image, { levels: 4 });
        fx.dispose();
        parentPort.postMessage(out.map((l) => Array.from(l.data.subarray(0, 64))));
      })();`;
    const run = () => new Promise((resolve, reject) => {
      const w = new Worker(script, { eval: true, workerData: { model: models.default, image } });
      let result;
      w.on('message', (m) => { result = m; });
      w.on('error', reject);
      w.on('exit', (code) => (code === 0 ? resolve(result) : reject(new Error(`worker exited with ${code}`))));
    });
    const results = await Promise.all([run(), run()]);
    for (const r of results) r.forEach((head, l) => assert.deepEqual(head, Array.from(expected[l].data.subarray(0, 64))));
  });

  // The main thread never loads film-features, so no 'exit' hook of ours runs there: the process
  // ends right after its worker, and libtorch must not be torn down under the worker's runs.
  for (const [how, end] of [['terminated', 'worker.terminate()'], ['calls process.exit()', "worker.postMessage('exit')"]]) {
    it(`the process ends cleanly when a worker_thread that ${how} had extracts running`, () => {
      const script = `
        const { Worker } = require('node:worker_threads');
        const worker = new Worker(\`
          const { parentPort } = require('node:worker_threads');
          const { FeatureExtractor } = require(\${JSON.stringify(${JSON.stringify(path.resolve(__dirname, '..'))})});
          parentPort.on('message', () => process.exit(3));
          (async () => {
            const fx = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 1 });
            const image = { data: new Float32Array(3 * 384 * 384).fill(0.5), shape: [1, 3, 384, 384] };
            fx.extract(image);
            fx.extract(image, { layout: 'nhwc' });
            parentPort.postMessage('running');
          })();\`, { eval: true });
        worker.once('message', () => setTimeout(() => ${end}, 100));
        worker.once('exit', (code) => console.log('worker exit', code));`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120000 });
      assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /worker exit (1|3)/);
    });
  }
});
