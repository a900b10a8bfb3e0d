'use strict';
// An abort gives back every slot of the pipeline's bounds: runs that share one PipelineLimits (a
// fleet worker's jobs) go on after one of them is aborted, at any point of a frame's trip.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./fixtures').need('sharp', 'ffmpeg');
const sharp = require('sharp');

const { FeatureExtractor } = require('..');
const batch = require('../dist/batch');
const { Semaphore } = require('../dist/batch/semaphore');

/** Every unit of the limits is free and nobody waits. */
function assertAllFree(limits, when) {
  for (const name of ['holding', 'extracting']) {
    const s = limits[name];
    assert.equal(s.free, s.capacity, `${when}: ${s.capacity - s.free} ${name} slot(s) still taken`);
    assert.equal(s.waiting, 0, `${when}: ${s.waiting} waiting for a ${name} slot`);
  }
}

/** p, or a rejection saying it hung. */
function within(p, ms, what) {
  let timer;
  const hung = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Semaphore and PipelineLimits: a wait can be aborted, and no slot is lost', () => {
  it('an aborted wait leaves the queue with nothing taken, and those behind it are served', async () => {
    const s = new Semaphore(3);
    await s.acquire(2);
    const controller = new AbortController();
    const big = s.acquire(3, controller.signal); // waits: 1 free
    let small = false;
    const behind = s.acquire(1).then(() => (small = true)); // FIFO: behind the big one
    await tick();
    assert.equal(s.waiting, 2);
    assert.equal(small, false);
    controller.abort(new Error('stop'));
    await assert.rejects(big, /stop/);
    await behind;
    assert.equal(s.free, 0);
    assert.equal(s.waiting, 0);
    s.release(2);
    s.release(1);
    assert.equal(s.free, 3);
  });

  it('an already aborted signal rejects at once and takes nothing; a release of what was not taken throws', async () => {
    const s = new Semaphore(2);
    await assert.rejects(s.acquire(1, AbortSignal.abort(new Error('gone'))), /gone/);
    assert.equal(s.free, 2);
    assert.throws(() => s.release(1), /not taken/);
    assert.equal(s.free, 2);
  });

  it('admit() keeps no slot when the signal fires during its wait, or as its slots are granted', async () => {
    const limits = new batch.PipelineLimits(1); // 2 holding, 1 extracting
    const first = await limits.admit(1);
    // waits for the extracting slot with one holding slot taken; the abort must give that back
    let controller = new AbortController();
    const waiting = limits.admit(1, controller.signal);
    await tick();
    assert.equal(limits.holding.free, 0);
    controller.abort(new Error('during the wait'));
    await assert.rejects(waiting, /during the wait/);
    assert.equal(limits.holding.free, 1);
    // granted by a release in the same turn as the abort: the grant must not be kept
    controller = new AbortController();
    const granted = limits.admit(1, controller.signal);
    await tick();
    first.release();
    controller.abort(new Error('as it was granted'));
    await assert.rejects(granted, /as it was granted/);
    assertAllFree(limits, 'after both aborts');
    first.release(); // a second release of the same frame's slots gives nothing back twice
    assertAllFree(limits, 'after a repeated release');
  });
});

describe('runBatch: an abort at any point gives back every slot of shared limits', function () {
  this.timeout(240_000);
  let tmp;
  let fx;
  let items;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-batch-abort-'));
    fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
    items = [];
    for (let i = 0; i < 4; i++) {
      const file = path.join(tmp, `still-${i}.png`);
      await sharp({ create: { width: 64 + 8 * i, height: 48, channels: 3, background: { r: 40 * i, g: 90, b: 200 } } }).png().toFile(file);
      items.push({ source: file, kind: 'image', name: `still-${i}` });
    }
    const clip = path.join(tmp, 'clip.mp4');
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-frames:v', '4', '-pix_fmt', 'yuv420p', clip]);
    assert.equal(r.status, 0, String(r.error ?? r.stderr));
    items.push({ source: clip, kind: 'video', name: 'clip' });
  });

  after(() => {
    fx?.dispose();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const frames = 8; // 4 stills and 4 video frames

  // where to abort: at the first event that the run's new matcher accepts
  const points = [
    ['before the run starts', null],
    ["on the first 'decoded'", () => (e) => e.type === 'decoded'],
    ["on the first 'extracting'", () => (e) => e.type === 'extracting'],
    ["on the first 'writing' (mid-write)", () => (e) => e.type === 'writing'],
    ["on the second 'written' (frames waiting for slots)", () => { let n = 0; return (e) => e.type === 'written' && ++n === 2; }],
  ];
  for (const jobs of [1, 2]) {
    for (const [when, matcher] of points) {
      it(`jobs ${jobs}, aborted ${when}: rejects, frees every slot, and the next run on the same limits completes`, async () => {
        const limits = new batch.PipelineLimits(jobs);
        const output = batch.resolveOutputOptions({ out: path.join(tmp, `out-${jobs}-${points.findIndex((p) => p[0] === when)}`), levels: 3 });
        const controller = new AbortController();
        const at = matcher?.();
        if (!at) controller.abort(new Error('stopped'));
        let fired = !at;
        await assert.rejects(within(batch.runBatch(items, {
          extractor: fx, output, limits, signal: controller.signal,
          onEvent: (e) => {
            if (!fired && at(e)) {
              fired = true;
              controller.abort(new Error('stopped'));
            }
          },
        }), 60_000, 'the aborted run'), /stopped/);
        assert.ok(fired, 'the abort point was reached');
        assertAllFree(limits, `after the abort ${when}`);
        const s = await within(batch.runBatch(items, { extractor: fx, output, limits }), 60_000, 'the run after the abort');
        assert.equal(s.failed.length, 0, String(s.failed[0]?.error));
        assert.equal(s.written, frames);
        assertAllFree(limits, 'after the next run');
      });
    }
  }

  it("processInput (a fleet worker's job) aborted on its first 'decoded': the next job on the worker's limits completes", async () => {
    const limits = new batch.PipelineLimits(2);
    const output = batch.resolveOutputOptions({ out: path.join(tmp, 'job'), levels: 3 });
    const clip = items.find((item) => item.kind === 'video');
    const controller = new AbortController();
    await assert.rejects(within(batch.processInput(clip, {
      extractor: fx, output, limits, signal: controller.signal,
      onEvent: (e) => { if (e.type === 'decoded') controller.abort(new Error('cancelled')); },
    }), 60_000, 'the cancelled job'), /cancelled/);
    assertAllFree(limits, 'after the cancelled job');
    const s = await within(batch.processInput(clip, { extractor: fx, output, limits }), 60_000, 'the next job');
    assert.equal(s.written, 4, String(s.failed[0]?.error));
    assertAllFree(limits, 'after the next job');
  });
});
