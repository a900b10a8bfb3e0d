'use strict';
// The exit status of `film-features extract` when its run stops: 130 only for the user's SIGINT or
// SIGTERM; an error that stops the run is a failure (1), reported with its message.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./fixtures').need('sharp');
const sharp = require('sharp');
const { runCli: run } = require('./helpers');

describe('film-features extract: exit status of a stopped run', function () {
  this.timeout(240_000);
  let tmp;
  let frames;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-cli-exit-'));
    frames = path.join(tmp, 'frames');
    fs.mkdirSync(frames);
    for (let i = 0; i < 24; i++) {
      await sharp({ create: { width: 256, height: 192, channels: 3, background: { r: 10 * i, g: 100, b: 50 } } })
        .png().toFile(path.join(frames, `f${String(i).padStart(2, '0')}.png`));
    }
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a file where an output folder goes fails that input: exits 1 naming the file, not 130 "interrupted"', async () => {
    const input = path.join(tmp, 'nested');
    fs.mkdirSync(path.join(input, 'sub'), { recursive: true });
    await sharp({ create: { width: 64, height: 48, channels: 3, background: 'red' } }).png().toFile(path.join(input, 'sub', 'b.png'));
    const out = path.join(tmp, 'blocked');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'sub'), 'a file of the user\'s, where the folder sub/ of the outputs goes');
    const r = await run(['extract', input, '--recursive', '--levels', '3', '--device', 'cpu', '--out', out]);
    assert.equal(r.signal, null);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^film-features: .*b\.png: .*blocked\/sub is a file, where a folder is needed.*ERR_FILM_OUTPUT_EXISTS.*$/m);
    assert.doesNotMatch(r.stderr, /interrupted/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(fs.readFileSync(path.join(out, 'sub'), 'utf8').startsWith('a file of the user'), true, 'the file is left alone');
  });

  for (const signal of ['SIGINT', 'SIGTERM']) {
    it(`${signal} during the run: exits 130 "interrupted (${signal})", leaving only complete outputs`, async () => {
      const out = path.join(tmp, `stopped-${signal}`);
      // sent once the first output is complete, while the others are in flight
      const r = await run(['extract', frames, '--levels', '4', '--device', 'cpu', '--jobs', '1', '--out', out], {
        onSpawn: (child) => {
          const timer = setInterval(() => {
            if (fs.existsSync(path.join(out, 'f00', 'meta.json'))) {
              clearInterval(timer);
              child.kill(signal);
            }
          }, 5);
          child.on('close', () => clearInterval(timer));
        },
      });
      assert.equal(r.signal, null, `ended by ${r.signal}, not by its own exit`);
      assert.equal(r.status, 130, r.stderr);
      assert.match(r.stderr, new RegExp(`^film-features: interrupted \\(${signal}\\); complete outputs are kept`, 'm'));
      const complete = fs.readdirSync(out).filter((n) => !n.startsWith('.'));
      assert.ok(complete.length >= 1 && complete.length < 24, `${complete.length} outputs`);
      for (const name of complete) assert.ok(fs.existsSync(path.join(out, name, 'meta.json')), `${name} is complete`);
    });
  }
});
