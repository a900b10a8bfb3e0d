'use strict';
// Before a batch starts, extract estimates what it will write and compares it with the free space:
// a run that cannot fit is refused at once, with both numbers and the options that shrink it. On a
// real small file system: a tmpfs mounted in a mount namespace of the test's own (unshare -m).
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { need } = require('./fixtures');

need('sharp', 'unshare');
const sharp = require('sharp');
const { cli } = require('./helpers');

/** `film-features extract ARGS` with --out on a fresh 40 MiB tmpfs; returns its output and what it left there. */
function onSmallDisk(args) {
  const script = 'mount -t tmpfs -o size=40m tmpfs "$1" && shift && "$@"; rc=$?; ls -A "$OUT_DIR" 2>/dev/null | tr "\\n" " " >&2; exit $rc';
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'film-small-'));
  try {
    const out = path.join(mnt, 'out');
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', mnt, process.execPath, cli, 'extract', ...args, '--out', out, '--device', 'cpu'],
      { encoding: 'utf8', env: { ...process.env, OUT_DIR: out } });
    return r;
  } finally {
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}

describe('extract: the output is estimated against the free space before the batch starts', function () {
  let tmp;
  let photos;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-space-'));
    photos = [];
    for (let i = 0; i < 5; i++) {
      const file = path.join(tmp, `p${i}.png`);
      await sharp({ create: { width: 256, height: 192, channels: 3, background: { r: 40 * i, g: 90, b: 10 } } }).png().toFile(file);
      photos.push(file);
    }
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('five 256x192 photos (every level, float32) into 40 MiB: refused at once, both numbers and the ways to shrink it, nothing written', () => {
    const r = onSmallDisk(photos);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /about (\d+\.\d) MB to write for 5 frame\(s\); 41\.\d MB free in .*: it will not fit\. Shrink it with --dtype float16 \(half the size\), --save-levels .*, --crop .*--force runs anyway/);
    const [, estimate] = /about (\d+\.\d) MB/.exec(r.stderr);
    assert.ok(Number(estimate) > 5 * 31 && Number(estimate) < 5 * 32, `${estimate} MB: 5 photos of 31.4 MB of levels each, and their headers`);
    assert.doesNotMatch(r.stdout, /written/);
    assert.ok(r.stderr.trimEnd().endsWith('--force runs anyway'), 'ls printed nothing: the output folder is empty');
  });

  it('options that shrink it fit, and the estimate is shown and close to what is written', () => {
    const r = onSmallDisk([...photos, '--dtype', 'float16', '--save-levels', '0']);
    assert.equal(r.status, 0, r.stderr);
    const [, estimate] = /^about (\d+\.\d) MB to write for 5 frame\(s\)/m.exec(r.stdout);
    const [, written] = /; (\d+\.\d) MB in .* \(estimated (\d+\.\d) MB\)/.exec(r.stdout);
    assert.ok(Math.abs(Number(written) - Number(estimate)) / Number(written) < 0.05, `${written} written, ${estimate} estimated`);
  });

  it('--force runs anyway: what fits is written whole, the rest fails with ENOSPC', () => {
    const r = onSmallDisk([...photos, '--force']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /about 157\.\d MB to write for 5 frame\(s\); 41\.\d MB free/);
    assert.match(r.stderr, /ENOSPC/);
    assert.match(r.stdout, /1 written .* 4 failed/);
    assert.match(r.stderr, /p0 $/, 'ls: one complete output, nothing half-written');
  });
});
