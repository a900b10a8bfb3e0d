'use strict';
// The native file writer (native/file_writer.h): a frame run's levels held natively and written
// into new files off the main thread, once each; names that are paths, files that exist and
// anything but held levels refused; a folder placed only where nothing is; worker_threads that end
// with writes in flight.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { framePlan, runFrame, runFrameHeld } = require('../dist/frame-plan');
const { writeNewFiles } = require('../dist/batch/write');
const { models, need } = require('./fixtures');
const { cli, requireHere, needs } = require('./helpers');

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
      { fsync: true, placeAt: path.join(tmp, 'placed') });
    assert.deepEqual(done, { bytes: big.length + 5, placed: true }); // the same first step of the placement rule as the native task
    assert.ok(!fs.existsSync(dir));
    assert.ok(fs.readFileSync(path.join(tmp, 'placed', 'big')).equals(Buffer.concat([Buffer.from('head'), big])));
    assert.equal(fs.readFileSync(path.join(tmp, 'placed', 'small'), 'utf8'), 's');
  });

  it('writeUnit makes missing folders above a unit; a file in the way is ERR_FILM_OUTPUT_EXISTS and stays as it was', async () => {
    const { writeUnit } = require('../dist/batch/output');
    const files = [{ name: 'a.txt', chunks: [Buffer.from('ours')] }];
    const options = (source) => ({ source, frame: false, meta: { source, frame: null, files: ['a.txt', 'meta.json'] } });
    const deep = path.join(tmp, 'out', 'x', 'y', 'unit');
    const { bytes } = await writeUnit(deep, files, options('s1'));
    assert.equal(bytes, 4 + fs.statSync(path.join(deep, 'meta.json')).size);
    assert.equal(fs.readFileSync(path.join(deep, 'a.txt'), 'utf8'), 'ours');
    fs.writeFileSync(path.join(tmp, 'out', 'file'), 'theirs');
    await assert.rejects(writeUnit(path.join(tmp, 'out', 'file', 'sub', 'unit'), files, options('s2')),
      (err) => err.code === 'ERR_FILM_OUTPUT_EXISTS' && err.path === path.join(tmp, 'out', 'file') && /is a file, where a folder is needed/.test(err.message));
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

  // --fsync, seen from outside: `film-features extract` run under strace, which logs each fsync
  // and fdatasync with the path of its file (-y) and each rename. The held-level writer (a plain
  // run) and the JS writer (--preview: bytes in hand) both; without --fsync, no flush at all.
  it('--fsync flushes every file, then its folder, before the rename into place, then the output folder; without it nothing (strace)', async function () {
    this.timeout(120000);
    requireHere(needs.strace());
    need('sharp');
    const png = path.join(tmp, 'a.png');
    await require('sharp')(Buffer.from(rgb), { raw: { width: 96, height: 64, channels: 3 } }).png().toFile(png);
    const traced = (out, ...flags) => {
      const log = path.join(tmp, `${path.basename(out)}.strace`);
      const { LD_PRELOAD, ...env } = process.env; // strace itself without test:asan's runtime; node with it
      const r = spawnSync('strace', ['-f', '-qq', '-y', '-o', log, '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2',
        ...(LD_PRELOAD ? ['-E', `LD_PRELOAD=${LD_PRELOAD}`] : []), process.execPath, cli, 'extract', png, '--out', out, ...flags],
      { encoding: 'utf8', env });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      // one entry per call, in the order they began: { call, path } (a rename's path: its target)
      return fs.readFileSync(log, 'utf8').split('\n').flatMap((line) => {
        const sync = /^\d+ +(fsync|fdatasync)\(\d+<(.*?)>[,)]/.exec(line);
        if (sync) return [{ call: 'fsync', path: sync[2] }];
        const rename = /^\d+ +rename(?:at2?)?\((.*)/.exec(line);
        const strings = rename && [...rename[1].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
        return strings?.length >= 2 ? [{ call: 'rename', path: strings[1] }] : [];
      });
    };
    const within = (calls, out) => calls.filter((c) => c.path === out || c.path.startsWith(`${out}/`));

    const plain = path.join(tmp, 'plain');
    assert.deepEqual(within(traced(plain), plain).filter((c) => c.call === 'fsync'), [], 'no flush without --fsync');
    for (const flags of [[], ['--preview']]) {
      const out = path.join(tmp, `fsync${flags.join('')}`);
      const calls = within(traced(out, '--fsync', ...flags), out);
      const unit = path.join(out, 'a');
      const files = fs.readdirSync(unit).sort();
      assert.ok(files.includes('meta.json') && files.includes('level0.npy') && (!flags.length || files.includes('preview.png')), files.join(' '));
      const placed = calls.findLastIndex((c) => c.call === 'rename' && c.path === unit);
      assert.ok(placed >= 0, `a rename into ${unit}: ${JSON.stringify(calls)}`);
      // the folder that became <out>/a (strace names a file by the path it had when flushed)
      const before = calls.slice(0, placed).filter((c) => c.call === 'fsync');
      const folders = before.filter((c) => files.every((f) => !c.path.endsWith(`/${f}`)) && c.path !== out);
      assert.equal(folders.length, 1, `one folder flushed before the rename: ${JSON.stringify(before)}`);
      const folder = folders[0].path;
      const flushedAt = (file) => before.findIndex((c) => c.path === `${folder}/${file}`);
      for (const f of files) {
        assert.ok(flushedAt(f) >= 0, `${flags.join(' ')} ${f} flushed before the rename: ${JSON.stringify(before)}`);
        assert.ok(flushedAt(f) < before.indexOf(folders[0]), `${f} flushed before its folder`);
      }
      assert.ok(calls.slice(placed + 1).some((c) => c.call === 'fsync' && c.path === out), `${out} flushed after the rename`);
      assert.ok(fs.readFileSync(path.join(unit, 'level0.npy')).equals(fs.readFileSync(path.join(plain, 'a', 'level0.npy'))), 'the same bytes');
    }
  });

  // The worker's writes: w0 awaited before it ends, w1..w5 in flight. Each is whole or absent.
  for (const [how, end] of [['is terminated', (w) => w.terminate()], ['calls process.exit()', (w) => w.postMessage('exit')]]) {
    it(`a worker_thread that ${how} with writes in flight: the process goes on, a write it awaited is there, each other is whole or absent, and the writer still works`, async function () {
      this.timeout(60000);
      const script = `
        const { parentPort, workerData } = require('node:worker_threads');
        const path = require('node:path');
        const { FeatureExtractor } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
        const { native } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'native'))});
        const { framePlan, runFrame, runFrameHeld } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'frame-plan'))});
        parentPort.on('message', () => process.exit(3));
        (async () => {
          const fx = await FeatureExtractor.load(workerData.model, { device: 'cpu', threads: 1 });
          const plan = framePlan(workerData.pad, [0, 1], null, false);
          const levels = (await fx[runFrame](workerData.image, plan)).map((l) => Buffer.from(l.data.buffer, l.data.byteOffset, l.data.byteLength));
          const big = Buffer.alloc(32 << 20, 7);
          const held = [];
          for (let i = 0; i < 6; i++) held.push((await fx[runFrameHeld](workerData.image, plan)).levels);
          const write = (i) => native().writeFiles(path.join(workerData.dir, 'w' + i), true, [{ name: 'big', parts: [big, 0, 1] }], held[i], false);
          await write(0);
          for (let i = 1; i < 6; i++) write(i).then(() => {}, () => {}); // queued on the I/O thread at once
          parentPort.postMessage(Buffer.concat(levels));
        })();`;
      const w = new Worker(script, { eval: true, workerData: { model: models.default, image, pad, dir: tmp } });
      const levels = await new Promise((resolve, reject) => {
        w.on('message', resolve);
        w.on('error', reject);
      });
      const exited = new Promise((resolve) => w.once('exit', resolve));
      await end(w);
      assert.ok([1, 3].includes(await exited), 'the worker ended as asked');
      // The I/O thread runs writes in order, so once this one is done the worker's are finished or dropped.
      const held = await fx[runFrameHeld](image, framePlan(pad, [0], null, false));
      const plain = await fx[runFrame](image, framePlan(pad, [0], null, false));
      await native().writeFiles(path.join(tmp, 'after'), true, [{ name: 'l0', parts: [Buffer.from('head'), 0] }], held.levels, false);
      assert.ok(fs.readFileSync(path.join(tmp, 'after', 'l0')).equals(Buffer.concat([Buffer.from('head'), bytesOf(plain[0].data)])),
        'a write after the worker ended: the right bytes');
      const whole = Buffer.concat([Buffer.alloc(32 << 20, 7), Buffer.from(levels)]);
      assert.ok(fs.readFileSync(path.join(tmp, 'w0', 'big')).equals(whole), 'w0, awaited in the worker: all its bytes');
      const written = [];
      for (let i = 1; i < 6; i++) {
        const dir = path.join(tmp, `w${i}`);
        if (!fs.existsSync(dir)) continue; // dropped before it started: nothing at all
        assert.deepEqual(fs.readdirSync(dir), ['big'], `w${i}`);
        assert.ok(fs.readFileSync(path.join(dir, 'big')).equals(whole), `w${i}: a write that ran is whole`);
        written.push(i);
      }
      console.log(`      in flight when the worker ended: w${written.length ? written.join(', w') : '(none)'} written, ${5 - written.length} dropped`);
    });
  }

  it("a folder that exists is EEXIST naming it, not 'a folder above it is not a folder'; a file above it is named as such", async () => {
    const dir = path.join(tmp, 'exists');
    fs.mkdirSync(dir);
    await assert.rejects(writeNewFiles(dir, [{ name: 'x', chunks: [Buffer.from('x')] }], true),
      (err) => err.code === 'EEXIST' && err.message.includes(dir) && !/not a folder/.test(err.message));
    // a unit whose files name one twice: EEXIST on that file, in the unit's own folder
    const { writeUnit } = require('../dist/batch/output');
    const twice = [{ name: 'a.npy', chunks: [Buffer.from('1')] }, { name: 'a.npy', chunks: [Buffer.from('2')] }];
    await assert.rejects(writeUnit(path.join(tmp, 'twice'), twice, { source: 's', frame: false, meta: { files: ['a.npy', 'meta.json'] } }),
      (err) => err.code === 'EEXIST' && /a\.npy/.test(err.message) && !/not a folder/.test(err.message));
    assert.ok(!fs.existsSync(path.join(tmp, 'twice')));
    fs.writeFileSync(path.join(tmp, 'plain'), 'theirs');
    await assert.rejects(writeNewFiles(path.join(tmp, 'plain', 'a', 'b'), [{ name: 'x', chunks: [Buffer.from('x')] }], true),
      (err) => err.code === 'ERR_FILM_OUTPUT_EXISTS' && err.path === path.join(tmp, 'plain') && /is a file, where a folder is needed/.test(err.message));
    assert.equal(fs.readFileSync(path.join(tmp, 'plain'), 'utf8'), 'theirs');
  });
});
