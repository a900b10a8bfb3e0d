'use strict';
// One temporary-name scheme for everything film-features writes (lib/batch/temp-files.ts): the
// names each writer makes parse as ours and fit in a file name, and the one cleanup removes exactly
// the leftovers of writers that are gone, judged only where a pid means something (this PID
// namespace on this boot), and nothing else.
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const temps = require('../dist/batch/temp-files');
const { checkWritable } = require('../dist/batch');
const { isFrameName } = require('../dist/batch/names');
const { writeUnit } = require('../dist/batch/output');
const { need } = require('./fixtures');

/** The pid of a process that has exited (reaped, so nothing answers to it now). */
function deadPid() {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

const space = path.basename(temps.tempPath('/', 'x')).split('~')[1];
const DAY = 24 * 3600 * 1000;

describe('temporary names', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-temps-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("every writer's temporary name is one of ours, standing for its final name, in this PID namespace and boot", () => {
    const ns = fs.readlinkSync('/proc/self/ns/pid').replace(/\D/g, '');
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/-/g, '').slice(0, 8);
    assert.equal(space, `${boot}${ns}`);
    for (const [file, base] of [
      [temps.tempPath(tmp, 'photo'), 'photo'], // a still's folder
      [temps.tempPath(tmp, '000012'), '000012'], // a frame's folder
      [temps.tempPath(tmp, 't0.5.png'), 't0.5.png'], // interpolate's PNG
      [temps.tempPath(tmp, 'slow.mp4', '.mp4'), 'slow.mp4'], // slowmo's video keeps its suffix (ffmpeg's container)
      [temps.tempPath(tmp, 'film-features-probe'), 'film-features-probe'], // checkWritable's probe
    ]) {
      assert.equal(path.dirname(file), tmp);
      assert.deepEqual(temps.parseTempName(path.basename(file)), { base, space, pid: process.pid }, file);
    }
    assert.notEqual(temps.tempPath(tmp, 'photo'), temps.tempPath(tmp, 'photo'));
    for (const name of ['photo', '.photo', '.photo.partial~', '.photo.partial~abc~x~1', 'photo.partial~x~1~1', '.hidden.txt']) {
      assert.equal(temps.parseTempName(name), null, name);
    }
    // film-features 0.1's names are recognised, with no writer that can be judged
    assert.deepEqual(temps.parseTempName('.photo.old-host-12-3'), { base: 'photo', space: null, pid: 0 });
    assert.ok(isFrameName('000012') && !isFrameName('12') && !isFrameName('photo'));
  });

  it('names of up to 255 bytes get temporary names that fit (a prefix and a hash), distinct, and a unit of that name is written', async () => {
    for (const bytes of [200, 226, 240, 255]) {
      for (const ch of ['a', 'é']) {
        const base = ch.repeat(Math.floor(bytes / Buffer.byteLength(ch)));
        const temp = path.basename(temps.tempPath(tmp, base, '.mp4'));
        assert.ok(Buffer.byteLength(temp) <= 255, `${Buffer.byteLength(temp)} bytes`);
        assert.ok(!temp.includes('\uFFFD'), temp);
        assert.ok(temps.parseTempName(temp), temp);
      }
    }
    const long = 'p'.repeat(250);
    const a = temps.parseTempName(path.basename(temps.tempPath(tmp, `${long}a`))).base;
    const b = temps.parseTempName(path.basename(temps.tempPath(tmp, `${long}b`))).base;
    assert.notEqual(a, b);
    const dir = path.join(tmp, 'long', 'n'.repeat(255));
    const { bytes } = await writeUnit(dir, [{ name: 'x.txt', chunks: [Buffer.from('x')] }],
      { source: 's', frame: false, meta: { source: 's', frame: null, files: ['x.txt', 'meta.json'] } });
    assert.ok(bytes > 1);
    assert.deepEqual(fs.readdirSync(path.dirname(dir)), ['n'.repeat(255)]);
  });

  it('the cleanup removes what gone writers left, of every writer, and nothing else', async () => {
    const dir = path.join(tmp, 'stale');
    fs.mkdirSync(dir);
    const dead = deadPid();
    const other = 'deadbeef4026530000'; // another PID namespace (or boot, or host)
    const gone = [
      `.photo.partial~${space}~${dead}~1`, `.slow.mp4.partial~${space}~${dead}~3.mp4`, `.t0.5.png.partial~${space}~${dead}~4`,
      `.film-features-probe.partial~${space}~${dead}~5`,
      `.photo.partial~${other}~1~6`, // another namespace's, untouched for two days
      '.photo.old-somehost-77-2', // film-features 0.1's, untouched for two days
    ];
    const kept = [
      `.photo.partial~${space}~${process.pid}~7`, // this process: still writing it
      `.photo.partial~${space}~1~8`, // pid 1 is alive
      `.photo.partial~${other}~${dead}~9`, // another namespace's pid means nothing here: recent, so kept
      `.photo.partial-${os.hostname()}-${dead}-10`, // 0.1's, recent
      '.photo.partial~notes', 'photo', '.hidden', // not our names
    ];
    for (const name of [...gone, ...kept]) {
      if (/mp4|png|probe/.test(name)) fs.writeFileSync(path.join(dir, name), 'x');
      else fs.mkdirSync(path.join(dir, name));
    }
    fs.writeFileSync(path.join(dir, gone[0], 'level0.npy'), 'half'); // a folder with files in it
    const old = new Date(Date.now() - 2 * DAY);
    for (const name of [gone[4], gone[5], 'photo', '.hidden']) fs.utimesSync(path.join(dir, name), old, old);
    await temps.removeAbandonedTemps(dir);
    assert.deepEqual(fs.readdirSync(dir).sort(), [...kept].sort());
  });

  it('a writer in another PID namespace (a container with the same host name) keeps its temporary while it writes', async function () {
    need('unshare');
    // Two "containers": each its own PID namespace, the same host name. The first holds a
    // temporary folder open as a writer does; the second cleans the folder.
    const dir = path.join(tmp, 'containers');
    fs.mkdirSync(dir);
    const lib = path.resolve(__dirname, '../dist/batch/temp-files');
    const writer = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '-e', `
      const t = require(${JSON.stringify(lib)}).tempPath(${JSON.stringify(dir)}, 'photo');
      require('fs').mkdirSync(t); require('fs').writeFileSync(t + '/level0.npy', 'being written');
      console.log(process.pid, t); setTimeout(() => {}, 60000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise((resolve, reject) => {
        writer.stdout.once('data', (d) => resolve(String(d).trim()));
        writer.once('exit', (code) => reject(new Error(`the writer exited (${code})`)));
      });
      const [pid, temp] = line.split(' ');
      assert.equal(pid, '1', 'the writer runs in a PID namespace of its own');
      const cleaner = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '-e',
        `require(${JSON.stringify(lib)}).removeAbandonedTemps(${JSON.stringify(dir)}).then(() => console.log('cleaned'))`], { encoding: 'utf8' });
      assert.equal(cleaner.stdout.trim(), 'cleaned', cleaner.stderr);
      assert.equal(fs.readFileSync(path.join(temp, 'level0.npy'), 'utf8'), 'being written');
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('checkWritable leaves nothing behind, and its probe is a name the cleanup knows', async () => {
    const out = path.join(tmp, 'out');
    await checkWritable(out);
    assert.deepEqual(fs.readdirSync(out), []);
  });
});
