'use strict';
// One temporary-name scheme for everything film-features writes (lib/batch/atomic.ts): the names
// each writer makes parse as ours, and the one cleanup removes exactly the leftovers of processes
// gone on this host, whichever writer left them, and nothing else.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const atomic = require('../dist/batch/atomic');
const { checkWritable } = require('../dist/batch');
const { isFrameName } = require('../dist/batch/output');

const host = os.hostname().replace(/[^\w.-]/g, '_');

/** The pid of a process that has exited (reaped, so nothing answers to it now). */
function deadPid() {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('temporary names', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-temps-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('every writer\'s temporary name is one of ours, standing for its final name', () => {
    const tag = atomic.atomicTag();
    assert.match(tag, new RegExp(`^${host.replace(/\./g, '\\.')}-${process.pid}-\\d+$`));
    const names = [
      [atomic.partialName(tmp, 'photo', tag), 'photo', 'partial'], // a still's folder (output.ts)
      [atomic.oldName(tmp, 'photo', tag), 'photo', 'old'], // our output moved aside while replaced
      [atomic.partialName(tmp, '000012', tag), '000012', 'partial'], // a frame's folder
      [atomic.partialName(tmp, 't0.5.png', tag), 't0.5.png', 'partial'], // interpolate's PNG (writeFileAtomic)
      [atomic.partialName(tmp, 'slow.mp4', tag, '.mp4'), 'slow.mp4', 'partial'], // slowmo's video keeps its suffix
      [atomic.partialName(tmp, 'film-features-probe', tag), 'film-features-probe', 'partial'], // checkWritable's probe
    ];
    for (const [file, base, kind] of names) {
      assert.equal(path.dirname(file), tmp);
      assert.deepEqual(atomic.parseTempName(path.basename(file)), { base, kind, host, pid: process.pid }, file);
    }
    for (const name of ['photo', '.photo', '.photo.partial-', '.photo.partial-host-x-1', 'photo.partial-host-1-1', '.hidden.txt']) {
      assert.equal(atomic.parseTempName(name), null, name);
    }
    assert.ok(isFrameName('000012') && !isFrameName('12') && !isFrameName('photo'));
  });

  it('removeStale removes what dead processes on this host left, of every writer, and nothing else', async () => {
    const dir = path.join(tmp, 'stale');
    fs.mkdirSync(dir);
    const dead = deadPid();
    const gone = [
      `.photo.partial-${host}-${dead}-1`, `.photo.old-${host}-${dead}-2`, `.slow.mp4.partial-${host}-${dead}-3.mp4`,
      `.t0.5.png.partial-${host}-${dead}-4`, `.film-features-probe.partial-${host}-${dead}-5`,
    ];
    const kept = [
      `.photo.partial-${host}-${process.pid}-6`, // this process: still writing it
      `.photo.partial-${host}-1-7`, // pid 1 is alive
      `.photo.partial-another-host-${dead}-8`, // another host's process may be alive: not ours to judge
      '.photo.partial-notes', 'photo', '.hidden', // not our names
    ];
    for (const name of [...gone, ...kept]) {
      if (name.includes('mp4') || name.includes('png') || name.includes('probe')) fs.writeFileSync(path.join(dir, name), 'x');
      else fs.mkdirSync(path.join(dir, name));
    }
    fs.writeFileSync(path.join(dir, `.photo.partial-${host}-${dead}-1`, 'level0.npy'), 'half'); // a folder with files in it
    await atomic.removeStale(dir);
    assert.deepEqual(fs.readdirSync(dir).sort(), [...kept].sort());
  });

  it('checkWritable leaves nothing behind, and its probe is a name the cleanup knows', async () => {
    const out = path.join(tmp, 'out');
    await checkWritable(out);
    assert.deepEqual(fs.readdirSync(out), []);
  });
});
