'use strict';
// What the services work changed, measured: the cost of copying inputs on the JS thread, images/s of
// concurrent runs (this package vs an earlier build of it, interleaved in one process), and RSS right
// after dispose() of 8 models (one child process per package).
// Usage: node bench/services.js [--before /path/to/older/film-features] [--rounds 5] [--count 8] [--size 256]
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { randomTensor, timeInterleaved, median, gcHook, table, machineLines, fmt, now, cliOptions } = require('./common');

const { before, rounds, count, size } = cliOptions({ before: undefined, rounds: 5, count: 8, size: 256 });
const here = path.resolve(__dirname, '..');
const packages = { after: here, ...(before ? { before: path.resolve(before) } : {}) };

function isa() {
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].split(' ') ?? [];
  return flags.includes('avx512f') ? 'AVX-512' : flags.includes('avx2') ? 'AVX2' : 'SSE';
}

// The synchronous part of a run call on the JS thread (checks + the input copy), then the run is
// cancelled while queued. 1080p: float32 NCHW (24.9 MB) and 8-bit RGB (6.2 MB).
async function copyCost() {
  const { native } = require(path.join(here, 'dist', 'native'));
  const model = path.join(here, 'models', 'film_extractor.pt');
  const handle = await native().load(model, 'cpu', 1, false);
  const float = randomTensor(1, 1080, 1920, 3);
  const bytes = { data: new Uint8Array(1080 * 1920 * 3).map((_, i) => i % 256), shape: [1, 3, 1080, 1920] };
  // Keep the executor busy so the jobs below stay queued and are cancelled before they start.
  const blocker = handle.run([randomTensor(1, 512, 512, 4)], 7, 0);
  const rows = [];
  for (const [name, input] of [['float32 NCHW 1920x1080', float], ['uint8 RGB 1920x1080', bytes]]) {
    const ms = [];
    for (let i = 0; i < 21; i++) {
      const start = now();
      const job = handle.run([input], 7, 0);
      ms.push(now() - start);
      job.cancel();
      await job.promise.catch(() => {});
    }
    const mb = input.data.byteLength / 2 ** 20;
    rows.push([name, fmt(mb, 1), fmt(median(ms), 2), fmt(mb / 1024 / (median(ms) / 1000), 1)]);
  }
  await blocker.promise;
  handle.dispose();
  return rows;
}

async function throughput() {
  const gc = gcHook();
  const images = Array.from({ length: count }, (_, i) => randomTensor(1, size, size, i + 1));
  const fxs = {};
  for (const [name, root] of Object.entries(packages)) {
    const { FeatureExtractor } = require(root);
    fxs[name] = await FeatureExtractor.load(path.join(root, 'models', 'film_extractor.pt'), { device: 'cpu' });
  }
  const fns = Object.fromEntries(Object.entries(fxs).map(([name, fx]) =>
    [name, () => Promise.all(images.map((im) => fx.extract(im, { levels: 7 })))]));
  const ms = await timeInterleaved(fns, rounds, 1, gc);
  Object.values(fxs).forEach((fx) => fx.dispose());
  return Object.entries(ms).map(([name, t]) => [name, packages[name], fmt((1000 * count) / median(t), 2),
    t.map((x) => fmt((1000 * count) / x, 2)).join(', ')]);
}

// test/services/dispose-rss.js, on each package: RSS right after dispose(), after the idle release
// it schedules (builds that have one), and after a gc().
function rssAfterDispose() {
  const script = path.join(here, 'test', 'services', 'dispose-rss.js');
  const model = path.join(here, 'models', 'film_extractor.pt');
  return Object.entries(packages).map(([name, root]) => {
    const r = spawnSync(process.execPath, ['--expose-gc', script, model, root], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    const m = JSON.parse(r.stdout);
    const mb = (x) => fmt(x / 2 ** 20, 0);
    return [name, mb(m.base), mb(m.loaded), mb(m.rightAfter), m.released ? mb(m.disposed) : 'none', mb(m.afterGc)];
  });
}

async function main() {
  console.log(machineLines([`ISA: ${isa()}`, `packages: ${JSON.stringify(packages)}`]).join('\n'));
  console.log('\nInput copy on the JS thread (median of 21 calls of the binding\'s run(), cancelled while queued):\n');
  console.log(table(['input', 'MB', 'ms on the JS thread', 'GB/s'], await copyCost()));
  console.log(`\n${count} concurrent extracts of ${size}x${size} (Promise.all, 7 levels, threads 0), medians of ${rounds} rounds, packages in turn:\n`);
  console.log(table(['package', 'root', 'images/s', 'per round'], await throughput()));
  console.log('\nRSS (MB) with 8 models loaded, right after dispose() of all 8, after the idle release, and after a gc():\n');
  console.log(table(['package', 'before loading', '8 loaded', 'right after dispose()', 'after the idle release', 'after gc()'],
    rssAfterDispose()));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
