'use strict';
// The fleet: film-features enqueue | worker | status over BullMQ, against a real redis-server started
// here (test/redis.js). Workers are real child processes, killed and signalled for real.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { QueueEvents, Worker } = require('bullmq');
require('./fixtures').need('sharp', 'ffmpeg'); // before sharp is required: a missing one fails loudly
const sharp = require('sharp');
const { FeatureExtractor, imageToTensor, padToMultiple } = require('..');
const { root, randomTensor, relativeError } = require('./fixtures');
const { startCli: start, finishCli: run, pollUntil, readNpy, fleetSuite } = require('./helpers');
const { startRedis } = require('./redis');

const sample = path.join(root, 'models', 'sample.png');
const LEVELS = 3;
const LOCK = '1'; // seconds: a killed worker's job is back in the queue within about 3 s

/** Every file under dir, relative. */
function listFiles(dir) {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}

describe('fleet: enqueue, worker and status over BullMQ on a real redis-server', function () {
  this.timeout(180000);
  let redis;
  let tmp;
  let fx;
  const fleet = fleetSuite();

  before(async () => {
    redis = await startRedis();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-fleet-'));
    fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
  });

  after(async () => {
    fx?.dispose();
    await redis?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const queue = (name) => fleet.queue(name, redis.url);
  const worker = (name, ...extra) => fleet.track(start(['worker', '--redis', redis.url, '--queue', name, '--lock-seconds', LOCK,
    '--threads', '1', '--device', 'cpu', '--out-root', tmp, '--input-root', tmp, '--input-root', path.dirname(sample), ...extra]));
  const enqueue = (name, ...args) => run(['enqueue', '--redis', redis.url, '--queue', name, ...args]);
  const status = async (name) => {
    const r = await run(['status', '--redis', redis.url, '--queue', name, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  /** `count` small noise images (w x h) in a new folder; resolves to their paths. */
  async function images(folder, count, w = 40, h = 32) {
    const dir = path.join(tmp, folder);
    fs.mkdirSync(dir);
    const files = [];
    for (let i = 0; i < count; i++) {
      const noise = randomTensor([w * h * 3], 100 + i).data.map((v) => Math.floor(v * 256));
      const file = path.join(dir, `img${String(i).padStart(2, '0')}.png`);
      await sharp(Buffer.from(noise), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
      files.push(file);
    }
    return files;
  }

  /** Asserts out/<name>/ holds exactly the complete output of `file`, equal to FeatureExtractor.extract. */
  async function checkOutput(dir, file, levels = LEVELS) {
    const want = Array.from({ length: levels }, (_, i) => `level${i}.npy`).concat('meta.json');
    assert.deepEqual(fs.readdirSync(dir).sort(), want.sort(), `${dir}: exactly the complete output, no temporary files`);
    const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const image = imageToTensor({ data, width: info.width, height: info.height, channels: info.channels });
    const features = await fx.extract(padToMultiple(image, 2 ** (levels - 1)).tensor, { levels });
    for (let i = 0; i < levels; i++) {
      const got = readNpy(path.join(dir, `level${i}.npy`));
      assert.deepEqual(got.shape, features[i].shape);
      const err = relativeError(got.data, features[i].data);
      assert.ok(err <= 1e-5, `${dir} level ${i}: relative error ${err}`);
    }
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
    assert.equal(meta.source, file);
    assert.deepEqual(meta.files.sort(), want);
  }

  it('rejects a bad --redis URL or --queue name as usage errors (exit 2)', async () => {
    for (const [args, message] of [
      [['status', '--redis', 'not a url'], /--redis.*redis:\/\/HOST/],
      [['status', '--redis', 'localhost:6379'], /redis:\/\/ or rediss:\/\//],
      [['status', '--redis', 'http://localhost:6379'], /redis:\/\/ or rediss:\/\//],
      [['worker', '--redis', 'redis://localhost:6379', '--queue', 'a:b'], /queue name/],
      [['worker', '--redis', 'redis://localhost:6379', '--lock-seconds', '0'], /--lock-seconds/],
      [['enqueue', sample], /required option '--redis <url>'/],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  it('fails within 2 s, saying why, when Redis is unreachable: a closed port, or a server that never answers', async () => {
    const { freePort } = require('./redis');
    const net = require('node:net');
    // a real listener that accepts and never says a word (a firewall's black hole, or not Redis)
    const sockets = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const roots = ['--out-root', tmp, '--input-root', tmp];
      for (const [url, why] of [[`redis://127.0.0.1:${await freePort()}`, /nothing listens at 127\.0\.0\.1:\d+ \(connect ECONNREFUSED\)/],
        [`redis://127.0.0.1:${silent.address().port}`, /no answer from 127\.0\.0\.1:\d+ within 1 s \(ETIMEDOUT\)/]]) {
        for (const args of [['status', '--redis', url], ['enqueue', '--redis', url, sample], ['worker', '--redis', url, '--device', 'cpu', ...roots]]) {
          const t = Date.now();
          const r = await run(args);
          const took = Date.now() - t;
          assert.equal(r.code, 1, `${args[0]}: ${r.stdout}${r.stderr}`);
          assert.match(r.stderr, why, args[0]);
          assert.match(r.stderr, new RegExp(`^film-features: cannot (read|add jobs to|reach) queue film-features at ${url}: `, 'm'));
          assert.ok(took < 2000, `${args[0]} on ${url} took ${took} ms`);
        }
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('status answers from a real Redis within 2 s, and a bad flag value is named with the flag', async () => {
    const t = Date.now();
    const r = await run(['status', '--redis', redis.url, '--queue', 'q-nothing-yet']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^queue q-nothing-yet: 0 waiting, 0 active, 0 completed, 0 failed, 0 delayed/);
    assert.ok(Date.now() - t < 2000, `status took ${Date.now() - t} ms`);
    for (const [args, message] of [
      [['status', '--redis', 'http://x'], /^error: --redis: 'http:\/\/x' is not a redis:\/\/ or rediss:\/\/ URL$/m],
      [['status', '--redis', 'redis://:s3cret@127.0.0.1:1/x'], /^error: --redis: 'redis:\/\/:\*\*\*@127\.0\.0\.1:1\/x' has a path that is not a database number/m],
      [['status', '--redis', redis.url, '--queue', 'a:b'], /^error: --queue: 'a:b' is not a queue name/m],
      [['worker', '--redis', redis.url, '--lock-seconds', '0'], /^error: --lock-seconds: '0' is not a number of seconds from 0\.1 to 3600$/m],
      [['enqueue', '--redis', redis.url, sample, '--levels', '3', '--save-levels', '1,3'], /^error: --save-levels: 3 is not a level \(0\.\.2; --levels 3 makes levels 0\.\.2\)$/m],
      [['enqueue', '--redis', redis.url, sample, '--attempts', '0'], /^error: --attempts: '0' is not an integer from 1 to 100$/m],
    ]) {
      const bad = await run(args);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, message);
      assert.doesNotMatch(bad.stderr, /Expected|received|of type|s3cret/);
    }
  });

  it('enqueue adds one job per image, carrying absolute paths and options, never pixels', async () => {
    const files = await images('enqueue', 3);
    const out = path.join(tmp, 'enqueue-out');
    const r = await enqueue('q-enqueue', ...files.map((f) => path.relative(root, f)), '--out', path.relative(root, out), '--levels', '2');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^added 3 jobs to queue q-enqueue at redis:\/\/127\.0\.0\.1:\d+; outputs go to \/.*enqueue-out$/m);
    const jobs = await queue('q-enqueue').getWaiting();
    assert.deepEqual(jobs.map((j) => j.data.item.source).sort(), files);
    for (const job of jobs) {
      assert.deepEqual(Object.keys(job.data).sort(), ['frames', 'item', 'output']);
      assert.deepEqual(job.data.item, { source: job.data.item.source, kind: 'image', name: path.basename(job.data.item.source, '.png') });
      assert.equal(job.data.output.out, out, 'absolute');
      assert.equal(job.data.output.levels, 2);
      assert.ok(JSON.stringify(job.data).length < 1000, 'a reference, not the image');
      assert.equal(job.opts.attempts, 3);
      assert.deepEqual(job.opts.backoff, { type: 'exponential', delay: 5000 });
    }
    const s = await status('q-enqueue');
    assert.deepEqual([s.waiting, s.active, s.completed, s.failed, s.delayed], [3, 0, 0, 0, 0]);
  });

  it('a corrupt file fails at once with its reason, and is not retried', async () => {
    const bad = path.join(tmp, 'corrupt.png');
    fs.writeFileSync(bad, 'this is not a PNG');
    const out = path.join(tmp, 'corrupt-out');
    assert.equal((await enqueue('q-corrupt', bad, '--out', out, '--attempts', '5', '--backoff', '0.1')).code, 0);
    const w = worker('q-corrupt');
    await w.waitFor(/job \d+ failed: .*corrupt\.png: .*unsupported image format/);
    // 'failed' is final in BullMQ (a job to be retried waits in 'delayed' instead): failed after one
    // attempt of five, it was given up at once. Retried, it would end there only after five.
    const job = await pollUntil('the job in the failed set', async () => (await queue('q-corrupt').getFailed())[0]);
    assert.equal(job.attemptsMade, 1);
    assert.equal(job.attemptsStarted, 1);
    assert.match(job.failedReason, /corrupt\.png: .*unsupported image format/);
    const s = await status('q-corrupt');
    assert.deepEqual([s.waiting, s.active, s.completed, s.failed, s.delayed], [0, 0, 0, 1, 0]);
    assert.equal(s.failures[0].reason, job.failedReason);
    assert.equal(s.failures[0].input, bad);
    const text = await run(['status', '--redis', redis.url, '--queue', 'q-corrupt']);
    assert.match(text.stdout, /1 failed/);
    assert.match(text.stdout, /corrupt\.png: not an image sharp can read here .* \(1 attempt\)/);
    assert.ok(!fs.existsSync(path.join(out, 'corrupt')), 'no output for a file that never decoded');
    w.child.kill('SIGTERM');
    assert.deepEqual(await w.exited, { code: 0, signal: null });
  });

  it('retries a failed write with exponential back-off, then reports the last reason', async () => {
    const [file] = await images('retry', 1);
    const blocked = path.join(tmp, 'retry-out');
    fs.writeFileSync(blocked, 'a file where the output folder should be');
    assert.equal((await enqueue('q-retry', file, '--out', blocked, '--attempts', '3', '--backoff', '0.4')).code, 0);
    const w = worker('q-retry');
    await w.waitFor(/job \d+ failed: .*retry-out is a file, where a folder is needed/);
    const starts = [...w.stdout.matchAll(/^(\S+) job \d+ started \(attempt (\d) of 3\)/gm)];
    assert.deepEqual(starts.map((m) => m[2]), ['1', '2', '3']);
    const [t1, t2, t3] = starts.map((m) => Date.parse(m[1]));
    assert.ok(t2 - t1 >= 400, `second try ${t2 - t1} ms after the first`);
    assert.ok(t3 - t2 >= 800, `third try ${t3 - t2} ms after the second: the back-off doubles`);
    const [job] = await queue('q-retry').getFailed();
    assert.equal(job.attemptsMade, 3);
    assert.match(job.failedReason, /retry-out is a file, where a folder is needed/);
    w.child.kill('SIGTERM');
    assert.equal((await w.exited).code, 0);
  });

  it('2 workers, 40 images, one SIGKILLed mid-job: 40 complete outputs, no temporary files, 40 completed', async () => {
    const files = await images('kill', 40, 96, 80);
    const out = path.join(tmp, 'kill-out');
    const r = await enqueue('q-kill', ...files, '--out', out, '--levels', String(LEVELS));
    assert.equal(r.code, 0, r.stderr);
    const victim = worker('q-kill');
    const survivor = worker('q-kill');
    await Promise.all([victim, survivor].map((w) => w.waitFor(/ worker \S+ on queue q-kill/)));
    const [, victimJob] = await victim.waitFor(/job (\d+) started/, { fresh: true });
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    const q = queue('q-kill');
    await pollUntil('40 completed jobs', async () => (await q.getJobCounts('completed')).completed === 40);
    const recovered = await q.getJob(victimJob);
    console.log(`      (job ${victimJob} killed mid-run, done ${((recovered.finishedOn - killedAt) / 1000).toFixed(1)} s later elsewhere; lock ${LOCK} s)`);
    assert.equal(recovered.stalledCounter, 1, 'the killed job was taken back from the dead worker once');
    assert.match(recovered.processedBy, new RegExp(`:${survivor.child.pid}$`));
    assert.deepEqual((await victim.exited).signal, 'SIGKILL');
    assert.deepEqual(listFiles(out).filter((f) => /tmp/.test(f)), [], 'no temporary files');
    assert.equal(fs.readdirSync(out).length, 40);
    for (const file of files) await checkOutput(path.join(out, path.basename(file, '.png')), file);
    const s = await status('q-kill');
    assert.deepEqual([s.waiting, s.active, s.completed, s.failed, s.delayed], [0, 0, 40, 0, 0]);
    survivor.child.kill('SIGTERM');
    assert.equal((await survivor.exited).code, 0);
  });

  it('a job whose complete output exists writes nothing again', async () => {
    const [file] = await images('again', 1);
    const out = path.join(tmp, 'again-out');
    assert.equal((await enqueue('q-again', file, '--out', out, '--levels', String(LEVELS))).code, 0);
    const w = worker('q-again');
    await w.waitFor(/job 1 done, 1 frame\(s\) written/);
    const dir = path.join(out, 'img00');
    assert.equal((await queue('q-again').getJob('1')).progress, 100);
    const before = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.statSync(path.join(dir, f))]));
    assert.equal((await enqueue('q-again', file, '--out', out, '--levels', String(LEVELS))).code, 0);
    await w.waitFor(/job 2 already had its output/);
    for (const [f, st] of Object.entries(before)) {
      const now = fs.statSync(path.join(dir, f));
      assert.deepEqual([now.ino, now.mtimeMs], [st.ino, st.mtimeMs], `${f} untouched`);
    }
    assert.deepEqual(fs.readdirSync(out), ['img00']);
    await checkOutput(dir, file);
    assert.deepEqual((await queue('q-again').getJob('2')).returnvalue, { output: dir, written: 0, skipped: 1, bytes: 0 });
    w.child.kill('SIGTERM');
    assert.equal((await w.exited).code, 0);
  });

  it('SIGTERM with a job in flight: the job completes, no new one starts, the worker exits 0', async () => {
    const out = path.join(tmp, 'term-out');
    const copy = path.join(tmp, 'term2.png');
    fs.copyFileSync(sample, copy);
    assert.equal((await enqueue('q-term', sample, copy, '--out', out, '--levels', '4')).code, 0);
    const w = worker('q-term');
    await w.waitFor(/job 1 started/);
    w.child.kill('SIGTERM');
    assert.deepEqual(await w.exited, { code: 0, signal: null }, w.stderr);
    assert.match(w.stdout, /SIGTERM: finishing the jobs in flight, taking no new ones/);
    assert.match(w.stdout, /job 1 done/);
    assert.doesNotMatch(w.stdout, /job 2 started/);
    const q = queue('q-term');
    assert.equal(await q.getJobState('1'), 'completed');
    assert.equal(await q.getJobState('2'), 'waiting');
    await checkOutput(path.join(out, 'sample'), sample, 4);
  });
  it('a second SIGTERM cancels the job in flight: it is retried later, nothing half-written is left', async () => {
    const out = path.join(tmp, 'cancel-out');
    assert.equal((await enqueue('q-cancel', sample, '--out', out, '--levels', '4', '--backoff', '60')).code, 0);
    const w = worker('q-cancel');
    await w.waitFor(/job 1 started/);
    w.child.kill('SIGTERM');
    await w.waitFor(/SIGTERM: finishing/);
    w.child.kill('SIGTERM');
    assert.deepEqual(await w.exited, { code: 0, signal: null }, w.stderr);
    assert.match(w.stdout, /job 1 failed, will retry: cancelled: SIGTERM received twice/);
    const job = await queue('q-cancel').getJob('1');
    assert.equal(await job.getState(), 'delayed', 'back in the queue after its back-off');
    assert.equal(job.attemptsMade, 1);
    assert.deepEqual(fs.existsSync(out) ? listFiles(out) : [], [], 'nothing written, no temporary files');
  });

  it('a job longer than 3 lock periods (a video) is never marked stalled: locks are renewed while it extracts', async () => {
    const lock = 0.5;
    // Size the video from one frame's extract time here, so the job lasts about 8 lock periods.
    const one = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 1 });
    const frame = randomTensor([1, 3, 192, 256], 5);
    const times = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await one.extract(frame, { levels: 4 });
      times.push((performance.now() - t) / 1000);
    }
    one.dispose();
    const perFrame = times.sort((a, b) => a - b)[1];
    const frames = Math.min(200, Math.max(4, Math.ceil((8 * lock) / perFrame)));
    const video = path.join(tmp, 'long.mkv');
    const ff = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=256x192:rate=25', '-frames:v', String(frames),
      '-c:v', 'ffv1', video], { encoding: 'utf8' });
    assert.equal(ff.error, undefined, 'ffmpeg is needed here: apt-get install ffmpeg');
    assert.equal(ff.status, 0, ff.stderr);

    // A stall checker of our own, as another worker would run, every 0.1 s.
    const connection = { url: redis.url };
    const checker = new Worker('q-long', null, { connection, autorun: false, stalledInterval: 100, lockDuration: lock * 1000 });
    const events = new QueueEvents('q-long', { connection });
    const stalled = [];
    let onStall;
    const stall = new Promise((resolve) => (onStall = resolve));
    checker.on('stalled', (id) => { stalled.push(id); onStall(); });
    events.on('stalled', ({ jobId }) => { stalled.push(jobId); onStall(); });
    await events.waitUntilReady();
    try {
      const out = path.join(tmp, 'long-out');
      const r = await enqueue('q-long', video, '--out', out, '--levels', '4', '--save-levels', '3', '--dtype', 'float16');
      assert.equal(r.code, 0, r.stderr);
      const w = worker('q-long', '--lock-seconds', String(lock));
      await w.waitFor(/job 1 started/);
      await checker.startStalledCheckTimer();
      // progress as status reads it while the job runs
      const { queueStatus } = require('../dist/fleet/status');
      const seen = [];
      let watching = true;
      const watch = (async () => {
        while (watching) {
          const s = await queueStatus(redis.url, 'q-long', 0);
          const frames = s.activeJobs[0]?.progress?.frames;
          if (frames !== undefined && frames !== seen.at(-1)) seen.push(frames);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      await Promise.race([w.waitFor(/job 1 done/, { ms: 600000 }), stall]);
      watching = false;
      await watch;
      assert.deepEqual(stalled, [], 'no stall seen');
      const job = await queue('q-long').getJob('1');
      const took = (job.finishedOn - job.processedOn) / 1000;
      console.log(`      (${frames} frames in ${took.toFixed(1)} s = ${(took / lock).toFixed(1)} lock periods of ${lock} s)`);
      assert.ok(took > 3 * lock, `the job took ${took} s, not more than 3 lock periods`);
      assert.equal(job.stalledCounter, 0);
      assert.equal(job.attemptsStarted, 1);
      assert.deepEqual(seen, [...seen].sort((a, b) => a - b), 'progress only grows');
      assert.ok(seen.length >= 1 && seen[0] < frames, `progress seen while running: ${seen}`);
      assert.deepEqual(job.progress, { frames }, 'progress: frames done');
      assert.deepEqual(job.returnvalue, { output: path.join(out, 'long'), written: frames, skipped: 0, bytes: job.returnvalue.bytes });
      const dirs = fs.readdirSync(path.join(out, 'long'));
      assert.deepEqual(dirs, Array.from({ length: frames }, (_, i) => String(i).padStart(6, '0')));
      for (const d of dirs) assert.deepEqual(fs.readdirSync(path.join(out, 'long', d)).sort(), ['level3.npy', 'meta.json']);
      w.child.kill('SIGTERM');
      assert.equal((await w.exited).code, 0);
    } finally {
      await checker.close();
      await events.close();
    }
  });
});
