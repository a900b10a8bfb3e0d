'use strict';
// The placement rule (lib/batch/place.ts) raced for real: a user saves into an output folder while
// `film-features extract` replaces it, and an empty folder appears where an output is about to go.
// No hook into our code: strace delays every rename system call by 300 ms, from outside, so each
// window the rule must close is wide open, and the user's writes land at many moments of it.
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { need } = require('./fixtures');

need('sharp', 'strace');
const sharp = require('sharp');
const { cli } = require('./helpers');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const RENAMES = 'rename,renameat,renameat2';
const DELAY = ['-f', '-qq', '-o', '/dev/null', '-e', `trace=${RENAMES}`, '-e', `inject=${RENAMES}:delay_enter=300000`];

/** `film-features extract` with every rename delayed; resolves to its exit status and stderr. */
function slowExtract(args) {
  const child = spawn('strace', [...DELAY, process.execPath, cli, 'extract', ...args, '--levels', '2', '--device', 'cpu'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/** Where the user's file is now: its own path, or a kept folder beside the output; null when lost. */
function findUserFile(out, unit, name) {
  const places = [path.join(out, unit, name), ...fs.readdirSync(out).filter((e) => e.startsWith(`${unit}.kept-`)).map((e) => path.join(out, e, name))];
  return places.find((p) => fs.existsSync(p)) ?? null;
}

describe('replacing an output while a user writes into it (renames delayed 300 ms by strace)', function () {
  this.timeout(600000);
  let tmp;
  let png; // 128x96: with --preview its levels (3 MB) are more than the native writer takes from JS, so JS writes them

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-race-'));
    png = path.join(tmp, 'src.png');
    await sharp({ create: { width: 128, height: 96, channels: 3, background: { r: 90, g: 30, b: 200 } } }).png().toFile(png);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const [writer, extra] of [['native writer', []], ['JS writer (--preview)', ['--preview']]]) {
    it(`${writer}: no file the user saves into <out>/src at any moment of a re-run is lost`, async () => {
      const out = path.join(tmp, `out-${extra.length}`);
      let r = await slowExtract([png, '--out', out, ...extra]);
      assert.equal(r.status, 0, r.stderr);
      let saved = 0;
      let refused = 0;
      const TRIALS = 8;
      for (let k = 0; k < TRIALS; k++) {
        const name = `user-${k}.txt`;
        const run = slowExtract([png, '--out', out, ...extra]);
        // from the moment our writer starts (its temporary folder appears) through the renames
        // that place the output (300 ms each), at 8 moments 120 ms apart
        const deadline = performance.now() + 120000;
        while (!fs.readdirSync(out).some((e) => e.startsWith('.src.partial')) && performance.now() < deadline) await sleep(2);
        await sleep(120 * k);
        try {
          fs.writeFileSync(path.join(out, 'src', name), `the user's notes ${k}`, { flag: 'wx' });
          saved++;
        } catch (err) {
          assert.equal(err.code, 'ENOENT', `the save failed: ${err.message}`); // the folder was away: nothing saved
          r = await run;
          continue;
        }
        r = await run;
        if (r.status !== 0) refused++;
        const found = findUserFile(out, 'src', name);
        assert.ok(found, `trial ${k}: the user's ${name} is lost (run: ${r.status}, ${r.stderr.trim().split('\n').pop()})`);
        assert.equal(fs.readFileSync(found, 'utf8'), `the user's notes ${k}`);
        // the user takes their file back: the folder is ours again for the next trial
        fs.rmSync(found);
        for (const e of fs.readdirSync(out).filter((x) => x.startsWith('src.kept-'))) fs.rmdirSync(path.join(out, e));
      }
      assert.ok(saved >= TRIALS / 2, `the user saved ${saved} of ${TRIALS} files`);
      console.log(`      ${saved} of ${TRIALS} saves landed during re-runs; ${refused} runs refused to replace, none lost`);
      // nothing of ours is left behind under a temporary name
      assert.deepEqual(fs.readdirSync(out).filter((e) => e.startsWith('.')), []);
    });
  }

  it('an empty folder (mode 700) that appears while the output is written is left as it was, and that input fails', async () => {
    for (const extra of [[], ['--preview']]) {
      const out = path.join(tmp, `empty-${extra.length}`);
      fs.mkdirSync(out);
      let ended = false;
      const run = slowExtract([png, '--out', out, ...extra]).finally(() => (ended = true));
      let made = false;
      const target = path.join(out, 'src');
      // 100 ms after our temporary folder holds its meta.json (the last file), while the rename
      // that places it waits, the user makes the folder
      while (!made) {
        const temp = fs.readdirSync(out).find((e) => e.startsWith('.src.partial'));
        if (temp && fs.existsSync(path.join(out, temp, 'meta.json'))) {
          await sleep(100);
          fs.mkdirSync(target, { mode: 0o700 });
          made = true;
        } else {
          await sleep(2);
        }
        if (!made && (ended || fs.existsSync(target))) break; // already placed, or failed: not raced here
      }
      const r = await run;
      assert.ok(made, 'the folder was made while the output was written');
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /ERR_FILM_OUTPUT_EXISTS/);
      assert.equal(fs.statSync(target).mode & 0o777, 0o700);
      assert.deepEqual(fs.readdirSync(target), []);
      assert.deepEqual(fs.readdirSync(out), ['src']);
    }
  });
});
