'use strict';
// What a Node service does to the addon: worker_threads that end mid-run, inputs that change under
// it, dispose under load, odd model paths, admission across workers, aborts, strict options.
const assert = require('node:assert/strict');
const { spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { loadNative } = require('./helpers');
const { models, randomTensor } = require('./fixtures');

// Child processes for what may take a process down; slow under npm run test:asan, hence the timeouts.
const child = (script, ...args) => spawnSync(process.execPath, [path.join(__dirname, 'services', script), ...args], {
  encoding: 'utf8', timeout: 580000,
});
// AddressSanitizer keeps freed memory in quarantine, so RSS cannot fall there.
const underAsan = /libasan/.test(process.env.LD_PRELOAD ?? '');
const sameData = (a, b) => a.forEach((level, i) => assert.deepEqual(level.data, b[i].data, `level ${i}`));

describe('services', function () {
  this.timeout(600000);
  let fx;
  const image = randomTensor([1, 3, 40, 56], 21);
  let expected;
  before(async () => {
    fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    expected = await fx.extract(image, { levels: 4 });
  });
  after(() => fx.dispose());

  describe('worker threads that end while work is in flight', () => {
    it('a worker terminated mid-run 20 times in one process; then the main thread extracts bit-identical results', () => {
      const r = child('terminate-workers.js', models.small);
      assert.equal(r.signal, null, `the process died of ${r.signal}:\n${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
      const { same } = JSON.parse(r.stdout);
      assert.equal(same, true);
    });

    it('process.exit() inside a worker with runs and a load in flight', () => {
      const r = child('exit-in-flight.js', models.small, 'worker');
      assert.equal(r.signal, null, `the process died of ${r.signal}:\n${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'ok');
    });

    it('process.exit() on the main thread with runs and a load in flight', () => {
      const r = child('exit-in-flight.js', models.small, 'main');
      assert.equal(r.signal, null, `the process died of ${r.signal}:\n${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
    });
  });

  describe('inputs the caller changes', () => {
    it('a getter returning a new array on each read: read once, the right numbers', async () => {
      let reads = 0;
      const tricky = {
        shape: image.shape,
        get data() {
          reads++;
          // the first read is the image; any later one would be garbage
          return reads === 1 ? image.data : new Float32Array(image.data.length).fill(1e30);
        },
      };
      sameData(await fx.extract(tricky, { levels: 4 }), expected);
      assert.equal(reads, 1);
    });

    it('a Proxy whose data changes on every read', async () => {
      let reads = 0;
      const proxy = new Proxy({}, {
        has: (_, key) => key === 'data' || key === 'shape',
        ownKeys: () => ['data', 'shape'],
        getOwnPropertyDescriptor: () => ({ enumerable: true, configurable: true }),
        get: (_, key) => {
          if (key === 'shape') return [...image.shape];
          if (key === 'data') return ++reads === 1 ? Float32Array.from(image.data) : new Float32Array(image.data.length);
          return undefined;
        },
      });
      sameData(await fx.extract(proxy, { levels: 4 }), expected);
      assert.equal(reads, 1);
    });

    it('a shape getter that transfers data away: a clear TypeError, never garbage', async () => {
      const data = Float32Array.from(image.data);
      const input = { data, get shape() { structuredClone(data.buffer, { transfer: [data.buffer] }); return image.shape; } };
      await assert.rejects(fx.extract(input, { levels: 4 }), (err) => err instanceof TypeError && /detached/.test(err.message));
    });

    it('the binding reads shape before data, so a transfer in a shape getter is caught there too', async () => {
      const handle = await loadNative(models.default, 'cpu', 1, false);
      try {
        const data = Float32Array.from(image.data);
        const input = { data, get shape() { structuredClone(data.buffer, { transfer: [data.buffer] }); return image.shape; } };
        assert.throws(() => handle.run([input], 4), (err) => err instanceof TypeError && /detached/.test(err.message));
      } finally {
        handle.dispose();
      }
    });

    it('an input transferred (structuredClone) while its run is pending: the right numbers', async () => {
      const data = Float32Array.from(image.data);
      const runs = [fx.extract({ data, shape: image.shape }, { levels: 4 })];
      structuredClone(data.buffer, { transfer: [data.buffer] });
      assert.equal(data.length, 0, 'the buffer was detached');
      sameData(await runs[0], expected);
    });

    it('an input posted to another thread with transfer while pending: the right numbers', async () => {
      const data = Float32Array.from(image.data);
      const { port1, port2 } = new MessageChannel();
      const run = fx.extract({ data, shape: image.shape }, { levels: 4 });
      port1.postMessage(data.buffer, [data.buffer]);
      const received = await new Promise((r) => port2.once('message', r));
      new Float32Array(received).fill(-5); // the other side writes to it
      port1.close();
      sameData(await run, expected);
    });
  });

  describe('dispose', () => {
    it('RSS after dispose() of 8 models falls back once nothing runs, with no garbage collection', function () {
      if (underAsan) {
        console.log("      (skipped: under AddressSanitizer, whose quarantine keeps freed memory)");
        this.skip();
      }
      const r = child('dispose-rss.js', models.default);
      assert.equal(r.status, 0, r.stderr);
      const { base, loaded, disposed, waitedMs } = JSON.parse(r.stdout);
      const mb = (x) => (x / 2 ** 20).toFixed(0);
      console.log(`      RSS: ${mb(base)} MB before, ${mb(loaded)} MB with 8 models, ${mb(disposed)} MB after dispose() ` +
        `and the idle release it scheduled (${waitedMs.toFixed(0)} ms later)`);
      assert.ok(loaded - base > 50 * 2 ** 20, 'loading 8 models should cost memory');
      assert.ok(disposed - base < 0.25 * (loaded - base), 'dispose() should give back most of it once nothing runs');
    });

    it('a run queued behind others when dispose() comes rejects with ERR_FILM_DISPOSED', async () => {
      const other = await FeatureExtractor.load(models.default, { device: 'cpu' });
      const big = randomTensor([1, 3, 256, 256], 3);
      // one run a core at least (FIFO executor): every core is taken before the last one can start
      const blockers = Array.from({ length: FeatureExtractor.counters().cores }, () => fx.extract(big));
      const queued = other.extract(image, { levels: 4 });
      other.dispose();
      await assert.rejects(queued, (err) => err.code === 'ERR_FILM_DISPOSED');
      await Promise.all(blockers);
    });
  });

  describe('CPU block cache', () => {
    // Built for the libtorch allocator interfaces native/cpu_allocator.cc knows (1.13 to 2.x); a build
    // without it must say so and report no cache at all, whatever the limits say.
    const { compiledIn } = native().cache();
    if (!compiledIn) console.log(`      (this build has no CPU block cache: libtorch ${native().torchVersion}; checking it reports none)`);
    const { defaultCacheLimit } = native()._internal;
    const GiB = 2 ** 30;
    const host = compiledIn ? Math.min(Math.floor(os.totalmem() / 4), 8 * GiB) : 0;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-cgroup-'));
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    // FeatureExtractor.cache() as a fresh process reports it, in MB
    const maxWith = (env) => {
      const r = spawnSync(process.execPath, [path.join(__dirname, 'services', 'cache-limit.js')], {
        encoding: 'utf8', env: { ...process.env, ...env },
      });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).memory.max;
    };

    it("respects a cgroup v2 memory.max: a quarter of a 4 GiB container's limit, not of the host's RAM", () => {
      fs.writeFileSync(path.join(tmp, 'memory.max'), `${4 * GiB}\n`);
      assert.equal(defaultCacheLimit(tmp), compiledIn ? Math.min(GiB, host) : 0);
    });

    it('cgroup v1 when there is no v2 file; "max" and no file mean no limit (a quarter of RAM, at most 8 GiB)', () => {
      const v1 = path.join(tmp, 'v1');
      fs.mkdirSync(path.join(v1, 'memory'), { recursive: true });
      fs.writeFileSync(path.join(v1, 'memory', 'memory.limit_in_bytes'), `${2 * GiB}\n`);
      assert.equal(defaultCacheLimit(v1), compiledIn ? Math.min(GiB / 2, host) : 0);
      fs.writeFileSync(path.join(tmp, 'memory.max'), 'max\n');
      assert.ok(Math.abs(defaultCacheLimit(tmp) - host) < 2 ** 20, `${defaultCacheLimit(tmp)} vs ${host}`);
      assert.ok(Math.abs(defaultCacheLimit(path.join(tmp, 'none')) - host) < 2 ** 20);
    });

    it('FILM_FEATURES_CPU_CACHE_MB sets the default that cache() reports; 0 turns it off', () => {
      assert.equal(maxWith({ FILM_FEATURES_CPU_CACHE_MB: '0' }), 0);
      assert.equal(maxWith({ FILM_FEATURES_CPU_CACHE_MB: '123' }), compiledIn ? 123 : 0);
    });
  });

  describe('releasing cached memory: only when nothing runs, off the JS thread', () => {
    const releases = () => native()._internal.idleReleases();
    const waitForRelease = async (from, ms = 20000) => {
      const t = Date.now();
      while (releases() === from) {
        if (Date.now() - t > ms) throw new Error(`no idle release within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 2));
      }
      return releases();
    };
    // A run long enough to be in flight for a while on a loaded machine: one thread, a large frame.
    const longRun = async () => {
      const slow = await FeatureExtractor.load(models.default, { device: 'cpu', threads: 1 });
      const run = slow.extract(randomTensor([1, 3, 768, 768], 8), { levels: 5 }).finally(() => slow.dispose());
      while (FeatureExtractor.counters().running === 0) await new Promise((r) => setTimeout(r, 1));
      return { run }; // wrapped: awaiting longRun() waits only until the run is in flight
    };

    it("dispose() and the bands of a large frame do not empty the caches under another extractor's run", async function () {
      if (FeatureExtractor.counters().cores < 2) {
        console.log('      (skipped: one core, so the bands would wait for the other run, never run beside it)');
        this.skip();
      }
      const { extractInBands } = require('../dist/batch');
      const other = await FeatureExtractor.load(models.default, { device: 'cpu', threads: 1 });
      const { run } = await longRun();
      let running = true;
      const long = run.then((r) => { running = false; return r; });
      const before = releases();
      other.dispose(); // schedules a release
      // a banded frame while the long run is in flight: asks for a release after every band
      const padded = randomTensor([1, 3, 128, 128], 9);
      await extractInBands(fx, padded, [0, 2], null, 'float32', undefined, undefined, 128 * 24);
      const stillRunning = running;
      const during = releases();
      await long;
      assert.ok(stillRunning, 'the long run (36 times the pixels, one thread) outlasted the bands');
      assert.equal(during, before, 'no release while another run was in flight');
      await waitForRelease(before); // and it runs once nothing does
    });

    it('the release runs on an executor thread once the runs finish, emptying the CPU block cache', async function () {
      if (native().cache().limit === 0) assert.fail('the CPU block cache is off (FILM_FEATURES_CPU_CACHE_MB=0): nothing to test');
      await fx.extract(randomTensor([1, 3, 256, 256], 10), { levels: 4 });
      global.gc(); // the outputs' blocks go back to the cache now, not during the wait below
      const cached = native().cache().cached;
      assert.ok(cached > 0, 'the run left blocks in the cache');
      const start = releases();
      native().releaseWhenIdle();
      // Spin without yielding: the release can only run meanwhile on another thread.
      const t = Date.now();
      while (releases() === start && Date.now() - t < 5000) { /* never yields to the event loop */ }
      assert.equal(releases(), start + 1, 'the release ran while the JS thread was busy: off the JS thread');
      const left = native().cache().cached;
      assert.ok(left < cached / 4, `the cache held ${cached} bytes, and ${left} right after the release`);
    });
  });

  describe('model paths', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-paths-'));
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it('a NUL byte is a TypeError, as in fs (the part before it is never loaded)', async () => {
      await assert.rejects(FeatureExtractor.load(`${models.default}\0junk`), (err) =>
        err instanceof TypeError && err.code === 'ERR_INVALID_ARG_VALUE' && /null bytes/.test(err.message));
      assert.throws(() => native().load(`${models.default}\0junk`, 'cpu', 1, false), (err) =>
        err instanceof TypeError && /null bytes/.test(err.message));
    });

    it('a FIFO is a clear error at once, not a hang', async () => {
      const fifo = path.join(tmp, 'model.pt');
      execFileSync('mkfifo', [fifo]);
      const started = Date.now();
      await assert.rejects(FeatureExtractor.load(fifo), (err) =>
        err.code === 'ERR_FILM_MODEL_FILE' && err.message.includes(fifo) && /FIFO, not a regular file/.test(err.message));
      assert.ok(Date.now() - started < 10000);
    });

    it('a directory is a clear error', async () => {
      await assert.rejects(FeatureExtractor.load(tmp), (err) =>
        err.code === 'ERR_FILM_MODEL_FILE' && /a directory, not a regular file/.test(err.message));
    });

    it('a missing file says "no such file" and names it', async () => {
      const missing = path.join(tmp, 'nope.pt');
      await assert.rejects(FeatureExtractor.load(missing), (err) =>
        err.constructor === Error && err.code === 'ERR_FILM_MODEL_FILE' &&
        err.message === `cannot load model '${missing}': no such file`);
    });

    it('a file that is not a FILM extractor is ERR_FILM_MODEL_FORMAT', async () => {
      const text = path.join(tmp, 'text.pt');
      fs.writeFileSync(text, 'not a zip');
      await assert.rejects(FeatureExtractor.load(text), (err) => err.code === 'ERR_FILM_MODEL_FORMAT');
      await assert.rejects(FeatureExtractor.load(models.noExtract), (err) => err.code === 'ERR_FILM_MODEL_FORMAT');
    });
  });

  describe('admission', () => {
    it('4 worker threads x 4 runs never run more than the cores\' worth of threads at once', () => {
      const r = child('admission.js', models.default);
      assert.equal(r.status, 0, r.stderr);
      const { counters, sampledMax, cpus } = JSON.parse(r.stdout);
      assert.equal(counters.cores, cpus);
      assert.equal(counters.completed, 4 + 16, 'every load and run went through the executor');
      assert.ok(counters.peakThreads <= counters.cores, JSON.stringify(counters));
      assert.ok(sampledMax <= counters.cores, `sampled ${sampledMax}`);
      // what the threads themselves report as their OpenMP team size: each run's own count
      assert.ok(counters.peakObservedThreads <= counters.cores, JSON.stringify(counters));
      assert.ok(counters.peakThreads >= Math.min(2, counters.cores), 'runs did overlap');
      assert.equal(counters.running + counters.queued + counters.threads, 0);
    });

    it('runs do not occupy libuv\'s pool: fs answers while every core is busy', async () => {
      const big = randomTensor([1, 3, 256, 256], 4);
      // Twice as many runs as there are cores and libuv threads: were runs on libuv's pool, the reads
      // would wait behind at least half of them.
      const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
      const n = 2 * Math.max(FeatureExtractor.counters().cores, pool);
      let finished = 0;
      const runs = Array.from({ length: n }, () => fx.extract(big).then(() => finished++));
      while (FeatureExtractor.counters().running === 0) await new Promise((r) => setImmediate(r));
      const started = performance.now();
      await Promise.all([0, 1, 2, 3, 4, 5].map(() => fs.promises.readFile(__filename)));
      const ms = performance.now() - started;
      const finishedByThen = finished;
      await Promise.all(runs);
      assert.ok(finishedByThen < n / 2, `6 reads took ${ms.toFixed(0)} ms: ${finishedByThen} of ${n} runs had finished by then`);
    });
  });

  describe('AbortSignal', () => {
    it('a queued run rejects at once with an AbortError; the runs ahead finish', async () => {
      const big = randomTensor([1, 3, 256, 256], 5);
      let aheadDone = 0;
      // one run a core at least (FIFO executor): every core is taken before the last one can start
      const ahead = Array.from({ length: FeatureExtractor.counters().cores }, () => fx.extract(big).then(() => { aheadDone++; }));
      const controller = new AbortController();
      const queued = fx.extract(image, { levels: 4, signal: controller.signal });
      const before = FeatureExtractor.counters();
      assert.ok(before.queued >= 1, JSON.stringify(before));
      let atRejection;
      let doneAtRejection;
      controller.abort();
      await assert.rejects(queued.catch((err) => {
        atRejection = FeatureExtractor.counters();
        doneAtRejection = aheadDone;
        throw err;
      }), (err) => err.name === 'AbortError' && err.code === 'ABORT_ERR');
      assert.equal(doneAtRejection, 0, 'rejected before any run ahead of it finished');
      assert.ok(atRejection.queued < before.queued, 'and it left the queue at once');
      await Promise.all(ahead);
    });

    it('a running run is discarded; the next call is right', async () => {
      const controller = new AbortController();
      const run = fx.extract(randomTensor([1, 3, 256, 256], 6), { signal: controller.signal });
      while (FeatureExtractor.counters().running === 0) await new Promise((r) => setImmediate(r));
      controller.abort(new Error('enough'));
      await assert.rejects(run, (err) => err.name === 'AbortError' && err.cause.message === 'enough');
      sameData(await fx.extract(image, { levels: 4 }), expected);
    });

    it('an already aborted signal rejects without queuing', async () => {
      const before = FeatureExtractor.counters().completed;
      await assert.rejects(fx.extract(image, { signal: AbortSignal.abort() }), { name: 'AbortError' });
      assert.equal(FeatureExtractor.counters().completed, before);
      await assert.rejects(fx.extract(image, { signal: 'stop' }), { code: 'ERR_INVALID_ARG_TYPE' });
    });
  });

  describe('strictness and codes', () => {
    it('an unknown option name is an error naming it', async () => {
      await assert.rejects(fx.extract(image, { level: 3 }), (err) =>
        err instanceof TypeError && err.code === 'ERR_INVALID_ARG_VALUE' && /options\.level\b/.test(err.message));
      await assert.rejects(FeatureExtractor.load(models.default, { thread: 2 }), /Unknown option options\.thread\b/);
      await assert.rejects(fx.extractPyramid([image], { levels: 2 }), /Unknown option options\.levels/);
    });

    it('errors carry a code', async () => {
      await assert.rejects(fx.extract(image, { levels: 0 }), { code: 'ERR_OUT_OF_RANGE' });
      await assert.rejects(fx.extract({ data: [], shape: image.shape }), { code: 'ERR_INVALID_ARG_TYPE' });
      const gone = await FeatureExtractor.load(models.default, { device: 'cpu' });
      gone.dispose();
      await assert.rejects(gone.extract(image), { code: 'ERR_FILM_DISPOSED' });
    });
  });
});
