'use strict';
// A confined fleet: a job (written by anyone who can write to Redis) reads and writes only inside the
// worker's --input-root and --out-root folders, symlinks followed; bad names and relative paths are
// refused, for good. Redis with a password. One pipeline's memory bound across a worker's jobs.
// A real redis-server (test/redis.js), real worker processes, real files.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Queue } = require('bullmq');
const { FeatureExtractor } = require('..');
const { need, randomTensor, root } = require('./fixtures');
const { startCli: start, finishCli: run, pollUntil, fleetSuite } = require('./helpers');
const { startRedis } = require('./redis');

need('sharp');

/** Every file under dir with its contents, to show that nothing changed. */
function snapshot(dir) {
  return fs.readdirSync(dir, { recursive: true }).sort().map((f) => {
    const p = path.join(dir, f);
    const st = fs.lstatSync(p);
    return [f, st.isFile() ? fs.readFileSync(p, 'utf8') : st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : 'dir', st.ino];
  });
}

/** A small noise PNG (sharp is what the worker decodes with too). */
async function png(file, seed, w = 40, h = 32) {
  const sharp = require('sharp');
  const noise = randomTensor([w * h * 3], seed).data.map((v) => Math.floor(v * 256));
  await sharp(Buffer.from(noise), { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
  return file;
}

describe('fleet: confined to its roots, Redis passwords, one memory bound per worker', function () {
  this.timeout(180000);
  let redis;
  let tmp;
  const fleet = fleetSuite();

  before(async () => {
    redis = await startRedis();
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'film-features-confined-')));
  });

  after(async () => {
    await redis?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const queue = (name, url = redis.url) => fleet.queue(name, url);
  const worker = (args, env) => fleet.track(start(['worker', '--lock-seconds', '2', '--threads', '1', '--device', 'cpu', ...args], env));
  const mkdir = (...parts) => {
    const dir = path.join(tmp, ...parts);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  };
  /** Under `tag`: an out root, an in root with good.png, and a folder outside both with secret.png. */
  const roots = async (tag, seed) => {
    const [outRoot, inRoot, outside] = ['out-root', 'in-root', 'outside'].map((name) => mkdir(tag, name));
    const good = await png(path.join(inRoot, 'good.png'), seed);
    const secret = await png(path.join(outside, 'secret.png'), seed + 1);
    return { outRoot, inRoot, outside, good, secret };
  };

  describe('job data', () => {
    const { checkJobData, unsafeNameReason } = require('../dist/fleet/job-data');
    const data = (item, out = '/srv/out') => ({ item: { source: '/srv/in/a.png', kind: 'image', name: 'a', ...item }, output: { out }, frames: {} });

    it('refuses output names that are not safe relative names', () => {
      for (const name of ['', '.', '..', 'sub/.', 'sub/..', './a', 'a/./b', '../a', '.hidden', 'a/.b', '/abs', 'a//b', 'a/',
        'a\\b', '..\\a', 'a\0b', 'x'.repeat(256)]) {
        assert.notEqual(unsafeNameReason(name), null, JSON.stringify(name));
        assert.throws(() => checkJobData(data({ name })), /safe relative output name/, JSON.stringify(name));
      }
      for (const name of ['a', 'a/b/c', 'clip-2', 'x.y', 'a..b', 'é', 'x'.repeat(255)]) {
        assert.equal(unsafeNameReason(name), null, name);
        assert.equal(checkJobData(data({ name })).item.name, name);
      }
    });

    it('refuses relative paths, never resolving them against the worker\'s folder', () => {
      assert.throws(() => checkJobData(data({}, 'out')), /absolute path for job data output\.out .*relative "out"/);
      assert.throws(() => checkJobData(data({}, './out')), /output\.out/);
      assert.throws(() => checkJobData(data({ source: 'in/a.png' })), /absolute path for job data item\.source/);
      assert.throws(() => checkJobData(data({ source: '/in/a\0.png' })), /item\.source/);
      assert.throws(() => checkJobData(data({}, null)), /output\.out/);
    });
  });

  describe('worker roots', () => {
    it('a worker will not start without --out-root and --input-root, or with one that is not a folder', async () => {
      const dir = mkdir('start');
      fs.writeFileSync(path.join(dir, 'file'), '');
      for (const [args, message] of [
        [[], /needs --out-root DIR .* and --input-root DIR/],
        [['--out-root', dir], /needs --out-root DIR .* and --input-root DIR/],
        [['--input-root', dir], /needs --out-root/],
        [['--out-root', path.join(dir, 'missing'), '--input-root', dir], /--out-root .*missing: ENOENT expected an existing folder/],
        [['--out-root', dir, '--input-root', path.join(dir, 'file')], /--input-root .*file: ENOTDIR/],
      ]) {
        const r = await run(['worker', '--redis', redis.url, '--device', 'cpu', ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, message);
      }
    });

    it('hostile jobs fail at once, unretried, saying why, and leave every folder as it was', async () => {
      const { outRoot, inRoot, outside, good, secret } = await roots('h', 1);
      // folders with files that no job may touch: inside the out root and outside it
      const victim = mkdir('h', 'out-root', 'victim');
      fs.writeFileSync(path.join(victim, 'notes.txt'), 'mine');
      mkdir('h', 'out-root', 'victim', 'x');
      fs.writeFileSync(path.join(victim, 'x', 'keep.txt'), 'keep');
      fs.writeFileSync(path.join(outside, 'x'), 'a file outside');
      mkdir('h', 'outside', 'y');
      fs.writeFileSync(path.join(outside, 'y', 'data.txt'), 'outside data');
      fs.symlinkSync(outside, path.join(outRoot, 'link')); // a way out, if symlinks were not followed
      fs.symlinkSync(secret, path.join(inRoot, 'alias.png'));
      const before = { outRoot: snapshot(outRoot), outside: snapshot(outside), inRoot: snapshot(inRoot) };

      const item = (name, source = good) => ({ source, kind: 'image', name });
      const output = (out) => ({ out, levels: 2, preview: true });
      const hostile = {
        'name ".": the out folder itself': [{ item: item('.'), output: output(victim), frames: {} }, /safe relative output name .*'\.' segment/],
        'name "sub/."': [{ item: item('x/.'), output: output(victim), frames: {} }, /'\.' segment/],
        'name ".."': [{ item: item('..'), output: output(victim), frames: {} }, /'\.\.' segment/],
        'a hidden name': [{ item: item('.x'), output: output(victim), frames: {} }, /starts with '\.'/],
        'an absolute name': [{ item: item(outside), output: output(victim), frames: {} }, /absolute path/],
        'a relative out': [{ item: item('z'), output: output('victim'), frames: {} }, /relative "victim"/],
        'a relative source': [{ item: item('z', 'in-root/good.png'), output: output(outRoot), frames: {} }, /item\.source/],
        'an out outside the roots': [{ item: item('y'), output: output(outside), frames: {} }, /output folder .*outside\/y is not inside an output root/],
        'an out through a symlink': [{ item: item('y'), output: output(path.join(outRoot, 'link')), frames: {} },
          /output folder .*link\/y \(it leads to .*outside\/y\) is not inside an output root/],
        'a name through a symlink': [{ item: item('link/y'), output: output(outRoot), frames: {} }, /leads to .*outside\/y\)/],
        'a name through a symlink, to a file': [{ item: item('link/x'), output: output(outRoot), frames: {} }, /leads to .*outside\/x\)/],
        'a source outside the roots': [{ item: item('s', secret), output: output(outRoot), frames: {} }, /source .*secret\.png is not inside an input root/],
        'a source through a symlink': [{ item: item('s', path.join(inRoot, 'alias.png')), output: output(outRoot), frames: {} },
          /alias\.png \(it leads to .*secret\.png\) is not inside an input root/],
        'a missing source': [{ item: item('s', path.join(inRoot, 'none.png')), output: output(outRoot), frames: {} }, /cannot be resolved: ENOENT/],
      };
      const q = queue('q-hostile');
      const ids = {};
      for (const [what, [data]] of Object.entries(hostile)) {
        ids[what] = (await q.add('extract', data, { attempts: 5, backoff: { type: 'fixed', delay: 50 } })).id;
      }
      const fine = await q.add('extract', { item: item('ok'), output: output(outRoot), frames: {} });
      const w = worker(['--redis', redis.url, '--queue', 'q-hostile', '--out-root', outRoot, '--input-root', inRoot]);
      await pollUntil('every job settled', async () => {
        const c = await q.getJobCounts('completed', 'failed');
        return c.completed + c.failed === Object.keys(hostile).length + 1;
      });
      // settled: 'failed' is final in BullMQ (a job to be retried waits in 'delayed', not counted here)
      for (const [what, [, reason]] of Object.entries(hostile)) {
        const job = await q.getJob(ids[what]);
        assert.equal(await job.getState(), 'failed', what);
        assert.equal(job.attemptsMade, 1, `${what}: tried once`);
        assert.match(job.failedReason, reason, what);
      }
      assert.equal(await (await q.getJob(fine.id)).getState(), 'completed', w.stdout + w.stderr);
      assert.deepEqual(fs.readdirSync(path.join(outRoot, 'ok')).sort(), ['level0.npy', 'level1.npy', 'meta.json', 'preview.png']);
      fs.rmSync(path.join(outRoot, 'ok'), { recursive: true });
      assert.deepEqual(snapshot(outRoot), before.outRoot, 'the out root is as it was');
      assert.deepEqual(snapshot(outside), before.outside, 'outside is as it was');
      assert.deepEqual(snapshot(inRoot), before.inRoot);
      w.child.kill('SIGTERM');
      assert.equal((await w.exited).code, 0);
    });

    it('enqueue checks the same rules before adding, given the roots', async () => {
      const { outRoot, inRoot, outside, good, secret } = await roots('e', 3);
      fs.symlinkSync(outside, path.join(outRoot, 'link'));
      const enqueue = (...args) => run(['enqueue', '--redis', redis.url, '--queue', 'q-enq', '--out-root', outRoot, '--input-root', inRoot, ...args]);
      let r = await enqueue(good, secret, '--out', outRoot);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /not added: .*secret\.png: refused: the source .* is not inside an input root/);
      assert.match(r.stdout, /added 1 job /);
      r = await enqueue(good, '--out', path.join(outRoot, 'link'));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /not added: .*good\.png: refused: the output folder .*link\/good \(it leads to .*outside\/good\)/);
      r = await enqueue(good, '--out', outRoot, '--out-root', path.join(outRoot, 'missing'));
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--out-root .*missing: ENOENT/);
      assert.equal(await queue('q-enq').count(), 1);
    });
  });

  describe('Redis with a password (requirepass)', () => {
    let locked;
    let q;
    before(async () => {
      locked = await startRedis({ password: 's3cret pw/+' });
    });
    after(async () => {
      await q?.close();
      await locked?.stop();
    });

    it('enqueue, worker and status use the password in the URL; it is never printed', async () => {
      const out = mkdir('pw', 'out');
      const file = await png(path.join(mkdir('pw', 'in'), 'p.png'), 5);
      assert.match(locked.url, /^redis:\/\/:s3cret%20pw%2F%2B@127\.0\.0\.1:\d+$/);
      const e = await run(['enqueue', '--redis', locked.url, '--queue', 'q-pw', file, '--out', out, '--levels', '2']);
      assert.equal(e.code, 0, e.stderr);
      assert.match(e.stdout, /added 1 job to queue q-pw at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+;/);
      const w = worker(['--redis', locked.url, '--queue', 'q-pw', '--out-root', out, '--input-root', path.dirname(file)]);
      q = new Queue('q-pw', { connection: { url: locked.url } });
      await pollUntil('the job done', async () => (await q.getJobCounts('completed')).completed === 1);
      assert.ok(fs.existsSync(path.join(out, 'p', 'meta.json')));
      const s = await run(['status', '--redis', locked.url, '--queue', 'q-pw', '--json']);
      assert.equal(s.code, 0, s.stderr);
      assert.equal(JSON.parse(s.stdout).completed, 1);
      w.child.kill('SIGTERM');
      assert.equal((await w.exited).code, 0);
      for (const text of [e.stdout, e.stderr, w.stdout, w.stderr, s.stdout, s.stderr]) assert.doesNotMatch(text, /s3cret/);
    });

    it('a wrong or missing password fails each command within seconds, saying so', async () => {
      const dir = mkdir('pw', 'roots');
      const wrong = locked.url.replace(/:[^:@]*@/, ':wrong@');
      const none = locked.url.replace(/:[^:@]*@/, '');
      for (const [url, message] of [[wrong, /WRONGPASS|invalid password|invalid username-password/i], [none, /NOAUTH|Authentication required/i]]) {
        for (const args of [['status'], ['enqueue', path.join(root, 'models', 'sample.png'), '--out', dir],
          ['worker', '--device', 'cpu', '--out-root', dir, '--input-root', dir]]) {
          const t = Date.now();
          const r = await run([...args, '--redis', url]);
          assert.equal(r.code, 1, `${args[0]}: ${r.stdout}${r.stderr}`);
          assert.match(r.stderr, message, args[0]);
          assert.ok(Date.now() - t < 15000, `${args[0]} took ${Date.now() - t} ms`);
          assert.doesNotMatch(r.stderr + r.stdout, /wrong@/);
        }
      }
    });
  });

  describe('Redis over TLS (rediss://) with a password', () => {
    let secure;
    let q;
    let ca;
    before(async () => {
      // a CA of our own and a certificate for 127.0.0.1 signed by it (Debian's openssl)
      const dir = mkdir('tls');
      const openssl = (...args) => {
        const r = require('node:child_process').spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
        assert.equal(r.error, undefined, 'openssl is needed here: apt-get install openssl');
        assert.equal(r.status, 0, r.stderr);
      };
      openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=film-features test CA');
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
      fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
      openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem',
        '-days', '2', '-extfile', 'ext.cnf');
      ca = path.join(dir, 'ca.pem');
      secure = await startRedis({ password: 'tls-pw', tls: { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key'), ca } });
    });
    after(async () => {
      await q?.close();
      await secure?.stop();
    });

    it('enqueue, worker and status work over rediss:// trusting the CA; without it they fail on the certificate', async () => {
      assert.match(secure.url, /^rediss:\/\/:tls-pw@127\.0\.0\.1:\d+$/);
      const env = { NODE_EXTRA_CA_CERTS: ca };
      const out = mkdir('tls', 'out');
      const file = await png(path.join(mkdir('tls', 'in'), 't.png'), 6);
      const e = await run(['enqueue', '--redis', secure.url, '--queue', 'q-tls', file, '--out', out, '--levels', '2'], env);
      assert.equal(e.code, 0, e.stderr);
      assert.match(e.stdout, /at rediss:\/\/:\*\*\*@127\.0\.0\.1/);
      const w = worker(['--redis', secure.url, '--queue', 'q-tls', '--out-root', out, '--input-root', path.dirname(file)], env);
      q = new Queue('q-tls', { connection: { url: secure.url, tls: { ca: fs.readFileSync(ca) } } });
      await pollUntil('the job done', async () => (await q.getJobCounts('completed')).completed === 1);
      assert.ok(fs.existsSync(path.join(out, 't', 'meta.json')));
      const s = await run(['status', '--redis', secure.url, '--queue', 'q-tls', '--json'], env);
      assert.equal(JSON.parse(s.stdout).completed, 1);
      w.child.kill('SIGTERM');
      assert.equal((await w.exited).code, 0);
      const untrusted = await run(['status', '--redis', secure.url, '--queue', 'q-tls']);
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.stderr, /self[- ]signed certificate/);
      const plain = await run(['status', '--redis', secure.url.replace('rediss:', 'redis:'), '--queue', 'q-tls']);
      assert.equal(plain.code, 1, 'a plain connection to a TLS port fails');
    });
  });

  describe('--concurrency: one pipeline for all of a worker\'s jobs', () => {
    let fx;
    before(async () => {
      fx = await FeatureExtractor.load(undefined, { device: 'cpu', threads: 1 });
    });
    after(() => fx?.dispose());

    /** The real extractor, counting the calls in flight and the most at once. */
    function counting(real) {
      const c = { now: 0, most: 0, large: 0, overlapLarge: false };
      const enter = (large) => {
        c.now++;
        c.most = Math.max(c.most, c.now);
        if (large) c.large++;
        if (c.large > 0 && c.now > 1) c.overlapLarge = true;
      };
      const leave = (large) => { c.now--; if (large) c.large--; };
      const wrapped = {
        device: real.device, info: real.info,
        async extract(...args) { enter(false); try { return await real.extract(...args); } finally { leave(false); } },
        async extractPyramid(...args) { enter(true); try { return await real.extractPyramid(...args); } finally { leave(true); } },
      };
      return { wrapped, c };
    }

    it('4 jobs at once run at most 2 extracts at once, and a large frame alone, as one job would', async () => {
      const { processJob } = require('../dist/fleet/process-job');
      const { PipelineLimits } = require('../dist/batch');
      const dir = mkdir('conc', 'in');
      const out = mkdir('conc', 'out');
      const files = [];
      for (let i = 0; i < 4; i++) files.push(await png(path.join(dir, `v${i}.png`), 10 + i, 64, 64));
      const big = await png(path.join(dir, 'big.png'), 20, 256, 256); // over largeFramePixels below: banded
      const job = (file, o = out) => ({
        item: { source: file, kind: 'image', name: path.basename(file, '.png') },
        output: require('../dist/batch').resolveOutputOptions({ out: o, levels: 3 }), frames: require('../dist/batch').resolveFrameOptions({}),
      });
      const all = [...files, big];
      // Today's worker: each job its own bounds. Shared: one PipelineLimits for all.
      const measure = async (shared, o) => {
        const { wrapped, c } = counting(fx);
        const limits = shared ? new PipelineLimits() : undefined;
        // largeFramePixels is BatchContext's; processJob uses the default (4 MP), so run the same
        // pipeline through processInput with a lower threshold
        const { processInput } = require('../dist/batch');
        const ctxs = all.map((f) => processInput(job(f, o).item, {
          extractor: wrapped, output: job(f, o).output, largeFramePixels: 100 * 100, limits,
        }));
        await Promise.all(ctxs);
        return c;
      };
      const own = await measure(false, mkdir('conc', 'own'));
      const shared = await measure(true, mkdir('conc', 'shared'));
      console.log(`      (extracts at once: ${own.most} with a pipeline per job, ${shared.most} with one shared)`);
      assert.ok(shared.most <= 2, `at most 2 extracts at once across the jobs, saw ${shared.most}`);
      assert.equal(shared.overlapLarge, false, 'the large frame was extracted alone');
      // and through processJob (what the worker calls) with shared limits, the outputs are right
      const limits = new PipelineLimits();
      const results = await Promise.all(files.map((f) => processJob(fx, job(f), { limits })));
      assert.deepEqual(results.map((r) => r.written), [1, 1, 1, 1]);
    });
  });
});
