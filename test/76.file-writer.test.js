'use strict';
// The native file writer (native/file_writer.h): a frame run's levels held natively and written
// into new files off the main thread, once each; names that are paths, files that exist and
// anything but held levels refused; a folder placed only where nothing is; worker_threads that end
// with writes in flight.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { framePlan, runFrame, runFrameHeld } = require('../dist/frame-plan');
const { writeNewFiles } = require('../dist/batch/atomic');
const { models } = require('./fixtures');

const pad = { height: 64, width: 96, top: 0, left: 0 };
const keep = [0, 1, 2, 3];
const rgb = Uint8Array.from({ length: 64 * 96 * 3 }, (_, i) => (i * 37) % 251);
const image = { data: rgb, shape: [1, 3, 64, 96] };
const bytesOf = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('native file writer', () => {
  let fx;
  let tmp;
  before(async () => {
    fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
  });
  after(() => fx.dispose());
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ff-writer-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const half of [false, true]) {
    it(`writes held levels after their headers, byte for byte what the frame run gives (${half ? 'float16' : 'float32'}, fsync)`, async () => {
      const plan = framePlan(pad, keep, { top: 3, left: 5, height: 50, width: 80 }, half);
      const outputs = await fx[runFrame](image, plan);
      const held = await fx[runFrameHeld](image, plan);
      assert.deepEqual(held.shapes, outputs.map((o) => o.shape));
      const header = (i) => Buffer.from(`header of level ${i}\n`);
      const files = keep.map((_, i) => ({ name: `level${i}.bin`, chunks: [header(i), { levels: held.levels, index: i }] }));
      const dir = path.join(tmp, 'unit');
      const { bytes, placed } = await writeNewFiles(dir, files, true, { fsync: true });
      assert.equal(placed, false);
      let total = 0;
      keep.forEach((_, i) => {
        const want = Buffer.concat([header(i), bytesOf(outputs[i].data)]);
        assert.ok(fs.readFileSync(path.join(dir, `level${i}.bin`)).equals(want), `level ${i}`);
        total += want.length;
      });
      assert.equal(bytes, total);
    });
  }

  it('writes each held level once: again, or after releaseLevels, is an Error and no file', async () => {
    const held = await fx[runFrameHeld](image, framePlan(pad, keep, null, false));
    await native().writeFiles(tmp, false, [{ name: 'a', parts: [0] }], held.levels, false);
    assert.throws(() => native().writeFiles(tmp, false, [{ name: 'b', parts: [0] }], held.levels, false), /level 0 was written or released/);
    native().releaseLevels(held.levels);
    assert.throws(() => native().writeFiles(tmp, false, [{ name: 'c', parts: [1] }], held.levels, false), /level 1 was written or released/);
    assert.throws(() => native().writeFiles(tmp, false, [{ name: 'd', parts: [4] }], held.levels, false), RangeError);
    assert.deepEqual(fs.readdirSync(tmp), ['a']);
  });

  it('refuses anything but held levels, names that are paths, and files or folders that exist (EEXIST, left as they were)', async () => {
    const bad = [{}, Buffer.alloc(4), null];
    for (const levels of bad) {
      assert.throws(() => native().writeFiles(tmp, false, [{ name: 'a', parts: [0] }], levels, false), TypeError);
    }
    for (const name of ['', '.', '..', '../x', 'a/b', 'a\0b']) {
      assert.throws(() => native().writeFiles(tmp, false, [{ name, parts: [Buffer.from('x')] }], null, false), TypeError, JSON.stringify(name));
    }
    fs.writeFileSync(path.join(tmp, 'taken'), 'mine');
    await assert.rejects(native().writeFiles(tmp, false, [{ name: 'taken', parts: [Buffer.from('x')] }], null, false),
      (err) => err.code === 'EEXIST' && err.message.includes(path.join(tmp, 'taken')));
    assert.equal(fs.readFileSync(path.join(tmp, 'taken'), 'utf8'), 'mine');
    await assert.rejects(native().writeFiles(tmp, true, [], null, false), (err) => err.code === 'EEXIST');
  });

  it('a call that throws uses up no held level: a bad name later in the list, or levels of two runs', async () => {
    const a = await fx[runFrameHeld](image, framePlan(pad, keep, null, false));
    const b = await fx[runFrameHeld](image, framePlan(pad, keep, null, false));
    assert.throws(() => native().writeFiles(tmp, false, [{ name: 'ok', parts: [0] }, { name: '../bad', parts: [1] }], a.levels, false), TypeError);
    assert.throws(() => native().writeFiles(tmp, false, [{ name: 'x', parts: [2, 2] }], a.levels, false), /given twice/);
    await assert.rejects(writeNewFiles(tmp, [{ name: 'y', chunks: [{ levels: a.levels, index: 0 }, { levels: b.levels, index: 1 }] }], false),
      /held levels of one frame run/);
    const { bytes } = await writeNewFiles(tmp, [{ name: 'all', chunks: keep.map((_, i) => ({ levels: a.levels, index: i })) }], false);
    assert.equal(bytes, a.shapes.reduce((sum, shape) => sum + shape.reduce((x, y) => x * y, 4), 0));
    assert.deepEqual(fs.readdirSync(tmp), ['all']);
    native().releaseLevels(b.levels);
  });

  it("rejects with Node's code and the path: ENOENT where the folder is missing", async () => {
    const missing = path.join(tmp, 'no', 'such');
    await assert.rejects(native().writeFiles(missing, false, [{ name: 'a', parts: [Buffer.from('x')] }], null, false),
      (err) => err.code === 'ENOENT' && /^ENOENT: /.test(err.message) && err.message.includes(path.join(missing, 'a')));
  });

  it('more than 1 MiB of bytes in hand and no held level: written from their own memory, the same bytes', async () => {
    const big = Buffer.alloc((2 << 20) + 3);
    for (let i = 0; i < big.length; i++) big[i] = (i * 131) & 255;
    const dir = path.join(tmp, 'js');
    const done = await writeNewFiles(dir, [{ name: 'big', chunks: [Buffer.from('head'), big] }, { name: 'small', chunks: [Buffer.from('s')] }], true,
      { fsync: true, placeAt: path.join(tmp, 'never') });
    assert.deepEqual(done, { bytes: big.length + 5, placed: false });
    assert.ok(fs.readFileSync(path.join(dir, 'big')).equals(Buffer.concat([Buffer.from('head'), big])));
    assert.equal(fs.readFileSync(path.join(dir, 'small'), 'utf8'), 's');
  });

  it('writeUnit makes missing folders above a unit; a file in the way is ERR_FILM_OUTPUT_EXISTS and stays as it was', async () => {
    const { writeUnit } = require('../dist/batch/output');
    const meta = (source) => Buffer.from(JSON.stringify({ writer: 'film-features', layout: 1, source, frame: null, files: ['a.txt', 'meta.json'] }));
    const files = (source) => [{ name: 'a.txt', chunks: [Buffer.from('ours')] }, { name: 'meta.json', chunks: [meta(source)] }];
    const deep = path.join(tmp, 'out', 'x', 'y', 'unit');
    assert.equal(await writeUnit(deep, files('s1'), { source: 's1', frame: false }), 4 + meta('s1').length);
    assert.equal(fs.readFileSync(path.join(deep, 'a.txt'), 'utf8'), 'ours');
    fs.writeFileSync(path.join(tmp, 'out', 'file'), 'theirs');
    await assert.rejects(writeUnit(path.join(tmp, 'out', 'file', 'sub', 'unit'), files('s2'), { source: 's2', frame: false }),
      (err) => err.code === 'ERR_FILM_OUTPUT_EXISTS' && err.message.includes(path.join(tmp, 'out', 'file', 'sub')));
    assert.equal(fs.readFileSync(path.join(tmp, 'out', 'file'), 'utf8'), 'theirs');
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'out')).sort(), ['file', 'x']);
  });

  it('placeAt: renamed where nothing is there; an empty folder or a file there is left alone, and so is the temporary folder', async () => {
    const files = () => [{ name: 'x.txt', chunks: [Buffer.from('ours')] }];
    const free = path.join(tmp, 'free');
    assert.deepEqual(await writeNewFiles(path.join(tmp, 't1'), files(), true, { placeAt: free }), { bytes: 4, placed: true });
    assert.equal(fs.readFileSync(path.join(free, 'x.txt'), 'utf8'), 'ours');
    assert.ok(!fs.existsSync(path.join(tmp, 't1')));
    for (const [name, make] of [['empty', (p) => fs.mkdirSync(p)], ['file', (p) => fs.writeFileSync(p, 'theirs')]]) {
      const target = path.join(tmp, name);
      make(target);
      const temp = path.join(tmp, `t-${name}`);
      assert.deepEqual(await writeNewFiles(temp, files(), true, { placeAt: target }), { bytes: 4, placed: false });
      assert.equal(fs.readFileSync(path.join(temp, 'x.txt'), 'utf8'), 'ours');
      if (name === 'empty') assert.deepEqual(fs.readdirSync(target), []);
      else assert.equal(fs.readFileSync(target, 'utf8'), 'theirs');
    }
  });

  it('a worker_thread that ends with writes in flight: the process goes on, and the writer still works', async function () {
    this.timeout(60000);
    const script = `
      const { parentPort, workerData } = require('node:worker_threads');
      const path = require('node:path');
      const { FeatureExtractor } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
      const { native } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'native'))});
      const { framePlan, runFrameHeld } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'frame-plan'))});
      (async () => {
        const fx = await FeatureExtractor.load(workerData.model, { device: 'cpu', threads: 1 });
        const big = Buffer.alloc(32 << 20, 7);
        for (let i = 0; i < 6; i++) {
          const held = await fx[runFrameHeld](workerData.image, framePlan(workerData.pad, [0, 1], null, false));
          native().writeFiles(path.join(workerData.dir, 'w' + i), true, [{ name: 'big', parts: [big, 0, 1] }], held.levels, false)
            .then(() => {}, () => {});
        }
        parentPort.postMessage('writing');
      })();`;
    const w = new Worker(script, { eval: true, workerData: { model: models.default, image, pad, dir: tmp } });
    await new Promise((resolve, reject) => {
      w.on('message', resolve);
      w.on('error', reject);
    });
    await w.terminate();
    // the I/O thread finished or dropped the worker's writes, and takes this one
    const held = await fx[runFrameHeld](image, framePlan(pad, [0], null, false));
    const { bytes } = await writeNewFiles(path.join(tmp, 'after'), [{ name: 'l0', chunks: [{ levels: held.levels, index: 0 }] }], true);
    assert.equal(bytes, fs.statSync(path.join(tmp, 'after', 'l0')).size);
    assert.ok(bytes > 0);
  });
});
