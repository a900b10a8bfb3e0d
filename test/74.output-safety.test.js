'use strict';
// The batch writer never removes what film-features did not write, names are safe and unique, and
// damaged media fail: `film-features extract` run as a child process on real files and real ffmpeg.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { need } = require('./fixtures');
need('sharp', 'ffmpeg'); // before sharp is required: a missing one fails loudly
const sharp = require('sharp');

const { FeatureExtractor } = require('..');
const batch = require('../dist/batch');
const { runCli: run, cli } = require('./helpers');

const LEVELS = 2;
// this process's PID namespace on this boot, as its temporary names carry it (lib/batch/temp-files.ts)
const space = path.basename(require('../dist/batch/temp-files').tempPath('/', 'x')).split('~')[1];

const extract = (inputs, out, ...more) => run(['extract', ...inputs, '--levels', String(LEVELS), '--device', 'cpu', '--out', out, ...more]);

function ffmpeg(args) {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-v', 'error', '-y', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `ffmpeg ${args.join(' ')}: ${r.error ?? r.stderr}`);
}

const meta = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));

/** Every file under dir with its bytes (symlinks as their target text), to show nothing changed. */
function snapshot(dir) {
  const out = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath ?? e.path, e.name);
    const rel = path.relative(dir, p);
    if (e.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(p)}`;
    else if (e.isFile()) out[rel] = fs.readFileSync(p).toString('base64');
    else out[rel] = 'dir';
  }
  return out;
}

/** A pid no process has now: a child that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid;

describe('batch output safety', function () {
  let tmp;
  let png; // 24x16 noise

  const image = async (file, seed = 1) => {
    const w = 24;
    const h = 16;
    const data = Buffer.alloc(w * h * 3);
    let a = seed;
    for (let i = 0; i < data.length; i++) {
      a = (Math.imul(a, 1103515245) + 12345) >>> 0;
      data[i] = a >>> 24;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
    return file;
  };

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-safety-'));
    png = await image(path.join(tmp, 'src.png'));
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('what is at <out>/<name>', () => {
    it('fails the input when a user folder, a regular file, a symlink or a foreign meta.json folder is there; the others go on', async () => {
      const home = path.join(tmp, 'home');
      const out = path.join(home, 'out');
      fs.mkdirSync(path.join(out, 'src'), { recursive: true });
      fs.writeFileSync(path.join(out, 'src', 'thesis.txt'), 'years of work');
      fs.writeFileSync(path.join(out, 'reg'), 'a regular file');
      const elsewhere = path.join(home, 'elsewhere');
      fs.mkdirSync(elsewhere);
      fs.writeFileSync(path.join(elsewhere, 'keep.txt'), 'kept');
      fs.symlinkSync(elsewhere, path.join(out, 'lnk'));
      fs.mkdirSync(path.join(out, 'foreign'));
      fs.writeFileSync(path.join(out, 'foreign', 'meta.json'), JSON.stringify({ source: 'x', files: ['meta.json'] }));
      const inputs = [];
      for (const name of ['src', 'reg', 'lnk', 'foreign', 'ok']) inputs.push(await image(path.join(tmp, 'in1', `${name}.png`)));
      const before = snapshot(home);
      for (const more of [[], ['--skip-existing']]) {
        const r = await extract(inputs, out, ...more);
        assert.equal(r.status, 1, r.stderr);
        for (const name of ['src', 'reg', 'lnk', 'foreign']) {
          const target = path.join(out, name).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          assert.match(r.stderr, new RegExp(`${name}\\.png: ${target} .*not a film-features output.*\\(ERR_FILM_OUTPUT_EXISTS\\)`, 'm'));
        }
        assert.match(r.stdout, new RegExp(`^${more.length ? 0 : 1} written .*, 4 failed`, 'm'));
        assert.doesNotMatch(r.stdout, /(src|reg|lnk|foreign)\.png: complete output exists/);
        const now = snapshot(home);
        for (const [p, v] of Object.entries(before)) assert.equal(now[p], v, `${p} unchanged`);
        assert.equal(meta(path.join(out, 'ok')).source, inputs[4]);
      }
    });

    it('film-features extract pics/src.png --out . in a project folder leaves ./src/ alone', async () => {
      const proj = path.join(tmp, 'proj');
      fs.mkdirSync(path.join(proj, 'src'), { recursive: true });
      fs.writeFileSync(path.join(proj, 'src', 'main.c'), 'int main;');
      await image(path.join(proj, 'pics', 'src.png'));
      const r = await run(['extract', 'pics/src.png', '--levels', String(LEVELS), '--device', 'cpu', '--out', '.'], { cwd: proj });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(fs.readFileSync(path.join(proj, 'src', 'main.c'), 'utf8'), 'int main;');
      assert.deepEqual(fs.readdirSync(path.join(proj, 'src')), ['main.c']);
    });

    it('replaces its own complete output; a user file added into it is kept and that input fails', async () => {
      const out = path.join(tmp, 'own');
      let r = await extract([png], out);
      assert.equal(r.status, 0, r.stderr);
      const m = meta(path.join(out, 'src'));
      assert.equal(m.writer, 'film-features');
      assert.equal(m.layout, 2);
      const dirStat = fs.lstatSync(path.join(out, 'src'), { bigint: true });
      assert.equal(m.identity, `${dirStat.ino}.${dirStat.birthtimeNs}`, 'meta.json names its own folder');
      const ino = fs.statSync(path.join(out, 'src', 'meta.json')).ino;
      r = await extract([png], out, '--save-levels', '0');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /1 of 1 inputs already have output .*overwriting it/);
      assert.deepEqual(fs.readdirSync(path.join(out, 'src')).sort(), ['level0.npy', 'meta.json']);
      assert.notEqual(fs.statSync(path.join(out, 'src', 'meta.json')).ino, ino);
      fs.writeFileSync(path.join(out, 'src', 'notes.txt'), 'mine');
      const before = snapshot(out);
      r = await extract([png], out);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /src\.png: .*own\/src holds files film-features did not write \(notes\.txt\).*ERR_FILM_OUTPUT_EXISTS/);
      assert.deepEqual(snapshot(out), before);
      assert.deepEqual(fs.readdirSync(out), ['src'], 'no temporary folder left');
    });

    it('the API reports ERR_FILM_OUTPUT_EXISTS on the failed frame, with the path', async () => {
      const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
      try {
        const output = batch.resolveOutputOptions({ out: path.join(tmp, 'api'), levels: LEVELS });
        fs.mkdirSync(path.join(output.out, 'x'), { recursive: true });
        const s = await batch.processInput({ source: png, kind: 'image', name: 'x' }, { extractor: fx, output });
        assert.equal(s.written, 0);
        assert.equal(s.failed.length, 1);
        assert.equal(s.failed[0].error.code, 'ERR_FILM_OUTPUT_EXISTS');
        assert.equal(s.failed[0].error.path, path.join(output.out, 'x'));
        // a name that is a path is refused before anything is read or written
        for (const name of ['.', '..', '', 'a/../b', '.hidden', 'a\\b', 'a\0b', '/abs']) {
          await assert.rejects(batch.processInput({ source: png, kind: 'image', name }, { extractor: fx, output }),
            (err) => err.code === 'ERR_INVALID_ARG_VALUE', JSON.stringify(name));
        }
        assert.deepEqual(fs.readdirSync(output.out), ['x']);
      } finally {
        fx.dispose();
      }
    });
  });

  describe('videos', () => {
    let clip; // 64x48, 3 frames

    before(() => {
      clip = path.join(tmp, 'vid', 'clip.mp4');
      fs.mkdirSync(path.dirname(clip), { recursive: true });
      ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', '-frames:v', '3', '-pix_fmt', 'yuv420p', clip]);
    });

    it('clip.png after clip.mp4 cannot delete the video\'s frames, nor clip.mp4 after clip.png the still', async () => {
      const out = path.join(tmp, 'clipout');
      let r = await extract([clip], out);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(fs.readdirSync(path.join(out, 'clip')), ['000000', '000001', '000002']);
      const still = await image(path.join(tmp, 'stills', 'clip.png'));
      const before = snapshot(out);
      r = await extract([still], out);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /clip\.png: .*clipout\/clip .*ERR_FILM_OUTPUT_EXISTS/);
      assert.deepEqual(snapshot(out), before);
      // and the other way round
      const out2 = path.join(tmp, 'clipout2');
      assert.equal((await extract([still], out2)).status, 0);
      const before2 = snapshot(out2);
      r = await extract([clip], out2);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /clip\.mp4: .*clipout2\/clip .*ERR_FILM_OUTPUT_EXISTS/);
      assert.deepEqual(snapshot(out2), before2);
    });

    it('a user folder at a video\'s <out>/<name> fails the video (with or without --skip-existing); a re-run replaces its own frames', async () => {
      const out = path.join(tmp, 'vidout');
      fs.mkdirSync(path.join(out, 'clip', '000001'), { recursive: true });
      fs.writeFileSync(path.join(out, 'clip', '000001', 'mine.txt'), 'mine');
      const before = snapshot(out);
      for (const more of [[], ['--skip-existing']]) {
        const r = await extract([clip], out, ...more);
        assert.equal(r.status, 1, r.stderr);
        assert.match(r.stderr, /clip\.mp4: .*vidout\/clip .*ERR_FILM_OUTPUT_EXISTS/);
        assert.deepEqual(snapshot(out), before);
      }
      fs.rmSync(path.join(out, 'clip'), { recursive: true });
      assert.equal((await extract([clip], out)).status, 0);
      const r = await extract([clip], out, '--save-levels', '1');
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(fs.readdirSync(path.join(out, 'clip', '000002')).sort(), ['level1.npy', 'meta.json']);
      // a user's file inside a video's folder: the video is no longer only ours, nothing in it is replaced
      fs.writeFileSync(path.join(out, 'clip', 'notes.txt'), 'mine');
      const before2 = snapshot(out);
      const r2 = await extract([clip], out);
      assert.equal(r2.status, 1, r2.stderr);
      assert.match(r2.stderr, /ERR_FILM_OUTPUT_EXISTS/);
      assert.deepEqual(snapshot(out), before2);
    });

    it('a truncated video fails, naming the file and the frames written; those frames are complete; a resume does not count it complete', async () => {
      const full = path.join(tmp, 'vid', 'full.mp4');
      ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-frames:v', '30', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', full]);
      const cut = path.join(tmp, 'vid', 'cut.mp4');
      const bytes = fs.readFileSync(full);
      fs.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1)); // as head -c
      // how many frames can be decoded from it, counted here by ffprobe
      const r0 = spawnSync('ffprobe', ['-v', 'quiet', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames',
        '-of', 'csv=p=0', cut], { encoding: 'utf8' });
      const decodable = Number(r0.stdout.trim());
      assert.ok(decodable > 0 && decodable < 30, `${decodable}`);
      const out = path.join(tmp, 'cutout');
      const r = await extract([cut], out);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`cut\\.mp4: .*cut\\.mp4 is damaged or truncated: it lasts 3 s at 10 fps, about 30 frames, but ffmpeg decoded ${decodable}\\b.*; ` +
        `${decodable} frame\\(s\\) written.*\\(ERR_FILM_DAMAGED_INPUT\\)`));
      assert.match(r.stdout, new RegExp(`^${decodable} written .*, 1 failed`, 'm'));
      const frames = fs.readdirSync(path.join(out, 'cut'));
      assert.equal(frames.length, decodable);
      for (const f of frames) assert.deepEqual(fs.readdirSync(path.join(out, 'cut', f)).sort(), meta(path.join(out, 'cut', f)).files.sort());
      const again = await extract([cut], out, '--skip-existing');
      assert.equal(again.status, 1, again.stderr);
      assert.match(again.stdout, new RegExp(`0 written .*, 1 failed, ${decodable} skipped`));
      // a Matroska file states no frame count: cut, ffmpeg's decode errors tell
      const mkv = path.join(tmp, 'vid', 'cut.mkv');
      ffmpeg(['-i', full, '-c', 'copy', path.join(tmp, 'vid', 'full.mkv')]);
      const mbytes = fs.readFileSync(path.join(tmp, 'vid', 'full.mkv'));
      fs.writeFileSync(mkv, mbytes.subarray(0, mbytes.length >> 1));
      const rm = await extract([mkv], path.join(tmp, 'cutmkv'));
      assert.equal(rm.status, 1, rm.stderr);
      assert.match(rm.stderr, /cut\.mkv: .*cut\.mkv is damaged or truncated: ffmpeg reported \d+ decode error\(s\) in (\d+) frames, the last: .*; \1 frame\(s\) written/);
      // a clip cut without re-encoding starts with an edit list: fewer frames decode than its header
      // holds samples, and that is not damage
      const copy = path.join(tmp, 'vid', 'streamcopy.mp4');
      ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', '-frames:v', '30', '-g', '10', '-pix_fmt', 'yuv420p', path.join(tmp, 'vid', 'g10.mp4')]);
      ffmpeg(['-ss', '0.55', '-i', path.join(tmp, 'vid', 'g10.mp4'), '-c', 'copy', copy]);
      const rc = await extract([copy], out);
      assert.equal(rc.status, 0, rc.stderr);
      // the whole file is fine
      const ok = await extract([full], out);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(fs.readdirSync(path.join(out, 'full')).length, 30);
    });
  });

  describe('names', () => {
    it('assignNames: visible parts, distinct without case, none the folder of another, suffixes that do not depend on luck', () => {
      const parts = (names) => names.map((n) => n.split('/').map(batch.safePart));
      assert.deepEqual(parts(['.', '..', '', '.png', 'a\\b']).map((p) => p.join('/')), ['_.', '_..', '_', '_.png', 'a_b']);
      assert.deepEqual(batch.assignNames(parts(['x', 'x', 'x-2'])), ['x', 'x-3', 'x-2']);
      assert.deepEqual(batch.assignNames(parts(['x/y', 'x'])), ['x/y', 'x-2']);
      assert.deepEqual(batch.assignNames(parts(['x', 'x/y', 'x/z'])), ['x', 'x-2/y', 'x-2/z']);
      assert.deepEqual(batch.assignNames(parts(['Clip', 'clip'])), ['Clip', 'clip-2']);
      for (const names of [['x', 'x-3', 'x-2'], ['x/y', 'x-2'], ['a/b/c', 'a/b-2', 'a/b/c-2']]) assert.equal(batch.nameClash(names), undefined);
      assert.deepEqual(batch.nameClash(['x', 'x/y']), ['x', 'x/y']);
      assert.deepEqual(batch.nameClash(['x/y', 'X']), ['x/y', 'X']);
    });

    it('runBatch refuses items whose names clash, before writing anything', async () => {
      const output = batch.resolveOutputOptions({ out: path.join(tmp, 'clash'), levels: LEVELS });
      const item = (name) => ({ source: png, kind: 'image', name });
      for (const names of [['a', 'a'], ['a', 'a/b'], ['a/b', 'A']]) {
        await assert.rejects(batch.runBatch(names.map(item), { extractor: null, output }), (err) => err.code === 'ERR_INVALID_ARG_VALUE');
      }
      assert.ok(!fs.existsSync(output.out));
    });

    it('..png, ...png and .png get visible names inside --out; nothing beside them or above --out changes', async () => {
      const parent = path.join(tmp, 'dots');
      const out = path.join(parent, 'out');
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, 'precious.txt'), 'keep');
      fs.writeFileSync(path.join(parent, 'sibling.txt'), 'keep');
      const inputs = [];
      for (const name of ['..png', '...png', '.png']) {
        inputs.push(path.join(tmp, 'dotin', name));
        await image(inputs.at(-1));
      }
      const before = snapshot(parent);
      const r = await extract(inputs, out);
      assert.equal(r.status, 0, r.stderr);
      const now = snapshot(parent);
      for (const [p, v] of Object.entries(before)) assert.equal(now[p], v, `${p} unchanged`);
      assert.deepEqual(fs.readdirSync(out).sort(), ['_.', '_..', '_.png', 'precious.txt']);
      assert.equal(meta(path.join(out, '_.')).source, inputs[0]);
      assert.equal(meta(path.join(out, '_..')).source, inputs[1]);
      assert.equal(meta(path.join(out, '_.png')).source, inputs[2]);
    });

    it('a/x.png, b/x.png, c/x-2.png give three distinct outputs; a resume finds the same names', async () => {
      const inputs = [];
      for (const p of ['a/x.png', 'b/x.png', 'c/x-2.png']) inputs.push(await image(path.join(tmp, 'coll', p), inputs.length + 3));
      const out = path.join(tmp, 'collout');
      const r = await extract(inputs, out);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^3 written/m);
      const dirs = fs.readdirSync(out).sort();
      assert.equal(dirs.length, 3);
      assert.deepEqual(dirs.map((d) => meta(path.join(out, d)).source).sort(), [...inputs].sort());
      assert.deepEqual(dirs, ['x', 'x-2', 'x-3']);
      assert.equal(meta(path.join(out, 'x-2')).source, inputs[2], 'a file named x-2 keeps its own name');
      const again = await extract(inputs, out, '--skip-existing');
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /0 written .* 3 skipped/);
    });

    it('-r: in/x.png and in/x/y.png do not nest; a video\'s frame folders are not another input\'s', async () => {
      const dir = path.join(tmp, 'rin');
      const x = await image(path.join(dir, 'x.png'), 7);
      const y = await image(path.join(dir, 'x', 'y.png'), 8);
      const v = await image(path.join(dir, 'clip', '000001.png'), 9);
      const clip = path.join(dir, 'clip.y4m');
      ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=32x24:rate=10', '-frames:v', '2', '-pix_fmt', 'yuv420p', clip]);
      const out = path.join(tmp, 'rout');
      const r = await extract(['-r', dir], out);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^5 written/m);
      const sources = {};
      for (const e of fs.readdirSync(out, { recursive: true })) {
        if (path.basename(e) === 'meta.json') sources[path.dirname(e)] = meta(path.join(out, path.dirname(e))).source;
      }
      assert.equal(Object.keys(sources).length, 5, JSON.stringify(sources));
      assert.deepEqual(Object.values(sources).filter((s) => s !== clip).sort(), [v, x, y].sort());
      const dirs = Object.keys(sources);
      for (const a of dirs) for (const b of dirs) assert.ok(a === b || !b.startsWith(`${a}/`), `${a} is not the parent of ${b}`);
    });
  });

  describe('temporary folders', () => {
    it('a --skip-existing resume with nothing to write removes a dead run\'s partial folders', async () => {
      const out = path.join(tmp, 'stale');
      const clip = path.join(tmp, 'vid', 'clip.mp4');
      assert.equal((await extract([png, clip], out)).status, 0);
      const pid = deadPid();
      const partial = path.join(out, `.src.partial~${space}~${pid}~1`);
      const framePartial = path.join(out, 'clip', `.000001.partial~${space}~${pid}~2`);
      const live = path.join(out, `.src.partial~${space}~${process.pid}~1`); // a live run's: kept
      for (const p of [partial, framePartial, live]) {
        fs.mkdirSync(p);
        fs.writeFileSync(path.join(p, 'level0.npy'), 'half');
      }
      const r = await extract([png, clip], out, '--skip-existing');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /0 written .* 4 skipped/);
      assert.ok(!fs.existsSync(partial), 'dead run\'s partial folder removed');
      assert.ok(!fs.existsSync(framePartial), 'dead run\'s frame partial folder removed');
      assert.ok(fs.existsSync(live), 'a live process\'s partial folder kept');
    });

    it('the set of folders already cleaned is bounded in a long-running process', async () => {
      const temps = require('../dist/batch/temp-files');
      const base = path.join(tmp, 'many-parents');
      for (let i = 0; i < 3 * temps.CLEANED_CACHE_LIMIT; i++) await temps.removeAbandonedTemps(path.join(base, String(i)));
      assert.ok(temps.cleanedCacheSize() <= temps.CLEANED_CACHE_LIMIT, `${temps.cleanedCacheSize()}`);
    });
  });

  it('--fsync: a failed flush of the folder after the output is in place is said, and the frame counts as written', async () => {
    need('strace');
    // 3 files and the unit's folder are flushed before the rename; the 5th fsync is the output folder's, after it
    const out = path.join(tmp, 'fsync-fails');
    const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=fsync', '-e', 'inject=fsync:error=EIO:when=5',
      process.execPath, cli, 'extract', png, '--levels', String(LEVELS), '--device', 'cpu', '--out', out, '--fsync'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1 written .* 0 failed/);
    assert.match(r.stderr, /written, but flushing its folder failed .*EIO.*fsync/);
    assert.deepEqual(fs.readdirSync(path.join(out, 'src')).sort(), ['level0.npy', 'level1.npy', 'meta.json']);
    assert.deepEqual(fs.readdirSync(out), ['src']);
  });

  it('a copy of our output is not ours: a folder copied back with our meta.json, or our folder swapped for a copy, is left alone', async () => {
    const out = path.join(tmp, 'copies');
    assert.equal((await extract([png], out)).status, 0);
    const src = path.join(out, 'src');
    fs.cpSync(src, path.join(tmp, 'backup'), { recursive: true, preserveTimestamps: true });
    fs.rmSync(src, { recursive: true });
    fs.renameSync(path.join(tmp, 'backup'), src); // the user's restored copy, our meta.json and all
    const before = snapshot(src);
    const r = await extract([png], out);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /src is a copy of a film-features output .*not replaced.*ERR_FILM_OUTPUT_EXISTS/);
    assert.deepEqual(snapshot(src), before);
    // --skip-existing does not take it for ours either
    assert.equal((await extract([png], out, '--skip-existing')).status, 1);
    assert.deepEqual(snapshot(src), before);
  });

  it('--fsync writes the same files', async () => {
    const a = path.join(tmp, 'nofsync');
    const b = path.join(tmp, 'fsync');
    assert.equal((await extract([png], a)).status, 0);
    const r = await extract([png], b, '--fsync');
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['level0.npy', 'level1.npy']) assert.ok(fs.readFileSync(path.join(a, 'src', f)).equals(fs.readFileSync(path.join(b, 'src', f))));
  });
});
