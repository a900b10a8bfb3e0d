'use strict';
// The fleet on this machine: images/s of one worker against two, and how long a SIGKILLed worker's
// job takes to come back. A redis-server of its own (as the tests start it), real worker processes.
//
//   node bench/fleet.js [--images 24] [--size 256x192] [--levels 4] [--rounds 2] [--lock 5] [--kills 3]
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Queue } = require('bullmq');
const sharp = require('sharp');

const { median, machineLines, rng, table, fmt } = require('./common');
const { startRedis } = require('../test/redis');

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'bin', 'film-features.js');

function args() {
  const o = { images: 24, size: '256x192', levels: 4, rounds: 2, lock: 5, kills: 3 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o)) throw new Error(`unknown option ${argv[i]}`);
    o[key] = key === 'size' ? argv[i + 1] : Number(argv[i + 1]);
  }
  const [w, h] = o.size.split('x').map(Number);
  return { ...o, width: w, height: h };
}

const log = (line) => process.stderr.write(`${line}\n`);

/** A worker process; resolves `ready` once it takes jobs. */
function startWorker(url, queue, extra) {
  // inputs and outputs are all under the temporary folder: the worker's roots
  const roots = ['--out-root', os.tmpdir(), '--input-root', os.tmpdir()];
  const child = spawn(process.execPath, [cli, 'worker', '--redis', url, '--queue', queue, '--device', 'cpu', ...roots, ...extra],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const listeners = [];
  child.stdout.on('data', (d) => {
    out += d;
    for (const l of [...listeners]) if (l.re.test(out.slice(l.from))) { listeners.splice(listeners.indexOf(l), 1); l.resolve(); }
  });
  const waitFor = (re, fresh = false) => new Promise((resolve) => listeners.push({ re, from: fresh ? out.length : 0, resolve }));
  const exited = new Promise((resolve) => child.on('close', resolve));
  return { child, ready: waitFor(/ worker \S+ on queue /), waitFor, exited, output: () => out };
}

async function stop(workers) {
  for (const w of workers) w.child.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.exited));
}

async function makeImages(dir, n, width, height) {
  fs.mkdirSync(dir, { recursive: true });
  const files = [];
  for (let i = 0; i < n; i++) {
    const next = rng(1000 + i);
    const pixels = Buffer.alloc(width * height * 3);
    for (let k = 0; k < pixels.length; k++) pixels[k] = Math.floor(next() * 256);
    const file = path.join(dir, `img${String(i).padStart(3, '0')}.png`);
    await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toFile(file);
    files.push(file);
  }
  return files;
}

function enqueue(url, queue, files, out, levels) {
  const r = spawnSync(process.execPath, [cli, 'enqueue', '--redis', url, '--queue', queue, '--out', out, '--levels', String(levels), ...files],
    { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`enqueue failed: ${r.stderr}`);
}

async function waitCompleted(q, n) {
  for (;;) {
    const c = await q.getJobCounts('completed', 'failed');
    if (c.failed > 0) throw new Error(`${c.failed} jobs failed`);
    if (c.completed >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Workers started and ready first (model loaded); then the clock runs from enqueue to the last completion. */
async function throughput(redis, o, files, tmp, setup, round) {
  const queue = `tp-${setup.name.replace(/\W+/g, '')}-${round}`;
  const workers = setup.workers.map((extra) => startWorker(redis.url, queue, extra));
  await Promise.all(workers.map((w) => w.ready));
  const q = new Queue(queue, { connection: { url: redis.url } });
  const out = path.join(tmp, queue);
  const t = performance.now();
  enqueue(redis.url, queue, files, out, o.levels);
  await waitCompleted(q, files.length);
  const s = (performance.now() - t) / 1000;
  await q.close();
  await stop(workers);
  fs.rmSync(out, { recursive: true, force: true });
  return files.length / s;
}

/**
 * Two workers; one is SIGKILLed right after it starts a job. Times from the kill to the job being
 * taken by the other worker, and to its completion there.
 */
async function recovery(redis, o, files, tmp, round) {
  const queue = `kill-${round}`;
  const lock = ['--lock-seconds', String(o.lock), '--threads', '1'];
  const victim = startWorker(redis.url, queue, lock);
  const survivor = startWorker(redis.url, queue, lock);
  await Promise.all([victim.ready, survivor.ready]);
  const q = new Queue(queue, { connection: { url: redis.url } });
  const out = path.join(tmp, queue);
  enqueue(redis.url, queue, files, out, o.levels);
  // a job taken after a warm-up, so the kill lands mid-run at an arbitrary point of the lock period
  await victim.waitFor(/job \d+ done/);
  const m = await new Promise((resolve) => {
    const re = /job (\d+) started/g;
    const from = victim.output().length;
    const poll = setInterval(() => {
      re.lastIndex = from;
      const hit = re.exec(victim.output());
      if (hit) { clearInterval(poll); resolve(hit); }
    }, 1);
  });
  victim.child.kill('SIGKILL');
  const killed = Date.now();
  const id = m[1];
  await waitCompleted(q, files.length);
  const job = await q.getJob(id);
  if (job.stalledCounter !== 1) throw new Error(`job ${id} was not recovered from a stall (stalledCounter ${job.stalledCounter})`);
  const back = (job.processedOn - killed) / 1000;
  const done = (job.finishedOn - killed) / 1000;
  await q.close();
  await stop([survivor]);
  await victim.exited;
  fs.rmSync(out, { recursive: true, force: true });
  return { back, done };
}

async function main() {
  const o = args();
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
  const isa = ['avx512f', 'avx2', 'fma'].filter((f) => flags.includes(f)).join(' ') || 'unknown';
  const redis = await startRedis();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-bench-fleet-'));
  try {
    log(`making ${o.images} images of ${o.width}x${o.height}`);
    const files = await makeImages(path.join(tmp, 'in'), o.images, o.width, o.height);
    const setups = [
      { name: '1 worker, all cores', workers: [['--threads', '0']] },
      { name: '2 workers, 1 thread each', workers: [['--threads', '1'], ['--threads', '1']] },
      { name: '2 workers, all cores each', workers: [['--threads', '0'], ['--threads', '0']] },
      { name: '1 worker, --concurrency 2', workers: [['--threads', '0', '--concurrency', '2']] },
    ];
    const rates = Object.fromEntries(setups.map((s) => [s.name, []]));
    for (let round = 0; round < o.rounds; round++) {
      for (let k = 0; k < setups.length; k++) { // rotate the order each round: noise hits all alike
        const setup = setups[(round + k) % setups.length];
        const r = await throughput(redis, o, files, tmp, setup, round);
        log(`round ${round + 1}: ${setup.name}: ${r.toFixed(2)} images/s`);
        rates[setup.name].push(r);
      }
    }
    const base = median(rates[setups[0].name]);
    const kills = [];
    for (let round = 0; round < o.kills; round++) {
      const r = await recovery(redis, o, files.slice(0, 12), tmp, round);
      log(`kill ${round + 1}: back in the queue and taken after ${r.back.toFixed(1)} s, done after ${r.done.toFixed(1)} s`);
      kills.push(r);
    }
    const lines = machineLines([`ISA: ${isa}`, `redis ${spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim()}`]);
    console.log(lines.join('\n'));
    console.log(`\n${o.images} images of ${o.width}x${o.height}, ${o.levels} levels, float32 .npy; median of ${o.rounds} rounds, taken in turn`);
    console.log('(from enqueue to the last completion; workers started and the model loaded beforehand)\n');
    console.log(table(['setup', 'images/s (median)', 'runs', 'vs 1 worker'],
      setups.map((s) => [s.name, fmt(median(rates[s.name]), 2), rates[s.name].map((r) => fmt(r, 2)).join(', '), `${fmt(median(rates[s.name]) / base, 2)}x`])));
    console.log(`\nSIGKILL recovery, 2 workers, --lock-seconds ${o.lock} (stalled check every lock period):\n`);
    console.log(table(['kill', 'taken again after (s)', 'completed after (s)'],
      kills.map((k, i) => [String(i + 1), fmt(k.back, 1), fmt(k.done, 1)])));
    console.log(`\nmedian: taken again after ${fmt(median(kills.map((k) => k.back)), 1)} s; the bound is lock/2 .. 2 x lock ` +
      `(${o.lock / 2}..${2 * o.lock} s): the lock expires, then the next stalled check moves the job back`);
  } finally {
    await redis.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
