'use strict';
// lib/model-file: model files read without libtorch. Parity, bit for bit, with what PyTorch itself
// reads (test/dump_weights.py, Debian's torch), and hostile files refused with a one-line
// ERR_FILM_MODEL_FORMAT (or _FILE) naming the file and what is wrong, never a crash.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { readModelFile, readExtractorWeights, parseModelFile, toFloat32 } = require('../dist/model-file');
const { ZipArchive } = require('../dist/model-file/zip');
const { dir, models, python, sh } = require('./fixtures');

const sha = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const f32bytes = (array) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

// ---- a STORED zip writer (and DEFLATE records with any declared size), for rebuilt and hostile zips.
// zip64: every central entry's sizes and offset in a zip64 extra field (zip64Fields of them: 3, or
// fewer to damage it), and a zip64 end record and locator before an end record of all ones.
function writeZip(records, { zip64 = false, zip64Fields = 3 } = {}) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const r of records) {
    const name = Buffer.from(r.name, 'utf8');
    const method = r.method ?? 0;
    const stored = method === 8 ? r.compressed : r.data;
    const size = r.size ?? r.data.length;
    const crc = r.crc ?? zlib.crc32(r.data ?? Buffer.alloc(0));
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(20, 4);
    head.writeUInt16LE(0x800, 6);
    head.writeUInt16LE(method, 8);
    head.writeUInt32LE(crc >>> 0, 14);
    head.writeUInt32LE(stored.length, 18);
    head.writeUInt32LE(size, 22);
    head.writeUInt16LE(name.length, 26);
    locals.push(head, name, stored);
    const values = [r.centralSize ?? size, r.centralCompressed ?? stored.length, r.centralOffset ?? offset];
    const extra = Buffer.alloc(zip64 ? 4 + 8 * zip64Fields : 0);
    if (zip64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(8 * zip64Fields, 2);
      values.slice(0, zip64Fields).forEach((v, i) => extra.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
    }
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(zip64 ? 45 : 20, 4);
    central.writeUInt16LE(zip64 ? 45 : 20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(zip64 ? 0xffffffff : values[1], 20);
    central.writeUInt32LE(zip64 ? 0xffffffff : values[0], 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(extra.length, 30);
    central.writeUInt32LE(zip64 ? 0xffffffff : values[2], 42);
    centrals.push(central, name, extra);
    offset += 30 + name.length + stored.length;
  }
  const cd = Buffer.concat(centrals);
  const tail = [];
  if (zip64) {
    const end64 = Buffer.alloc(56 + 20);
    end64.writeUInt32LE(0x06064b50, 0);
    end64.writeBigUInt64LE(44n, 4);
    end64.writeUInt16LE(45, 12);
    end64.writeUInt16LE(45, 14);
    end64.writeBigUInt64LE(BigInt(records.length), 24);
    end64.writeBigUInt64LE(BigInt(records.length), 32);
    end64.writeBigUInt64LE(BigInt(cd.length), 40);
    end64.writeBigUInt64LE(BigInt(offset), 48);
    end64.writeUInt32LE(0x07064b50, 56);
    end64.writeBigUInt64LE(BigInt(offset + cd.length), 64);
    end64.writeUInt32LE(1, 72);
    tail.push(end64);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : records.length, 8);
  end.writeUInt16LE(zip64 ? 0xffff : records.length, 10);
  end.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
  end.writeUInt32LE(zip64 ? 0xffffffff : offset, 16);
  return Buffer.concat([...locals, cd, ...tail, end]);
}

/** A real file's records, in order, as writeZip takes them. */
function recordsOf(file) {
  const zip = ZipArchive.open(fs.readFileSync(file));
  return [...zip.entries.values()].sort((a, b) => a.headerOffset - b.headerOffset)
    .map((e) => ({ name: e.name, data: Buffer.from(zip.read(e.name)) }));
}

/** Replaces the first occurrence of `from` in a record (the bytes must be there). */
function patch(data, from, to) {
  const at = data.indexOf(from);
  assert.ok(at >= 0, `the bytes to patch are not in the record: ${from.toString('hex')}`);
  return Buffer.concat([data.subarray(0, at), to, data.subarray(at + from.length)]);
}

const b = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const long1 = (value) => { // LONG1 of a non-negative BigInt
  const bytes = [];
  for (let v = BigInt(value); v > 0n; v >>= 8n) bytes.push(Number(v & 0xffn));
  if (!bytes.length || bytes[bytes.length - 1] & 0x80) bytes.push(0);
  return b([0x8a, bytes.length], bytes);
};
const binint = (value) => { const x = Buffer.alloc(5); x[0] = 0x4a; x.writeInt32LE(value, 1); return x; };

describe('model files read without libtorch (lib/model-file)', function () {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-reader-'));
  const made = path.join(tmp, 'made');
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const file = (name, bytes) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, bytes);
    return p;
  };

  // ---------------------------------------------------------------- parity ----
  describe('parity with PyTorch, bit for bit', function () {
    let reference;
    let files;
    before(function () {
      sh(python, [path.join(__dirname, 'dump_weights.py'), 'make', made]);
      const fixtures = fs.readdirSync(dir).filter((n) => n.endsWith('.pt')).map((n) => path.join(dir, n));
      files = [...new Set([models.default, models.interpolator, models.interpolatorFp16, models.small, ...fixtures,
        ...fs.readdirSync(made).filter((n) => !n.endsWith('.safetensors')).map((n) => path.join(made, n))])];
      reference = JSON.parse(sh(python, [path.join(__dirname, 'dump_weights.py'), 'dump', ...files]));
    });

    async function assertSame(ours, expected, label) {
      assert.deepEqual([...ours.tensors.keys()].sort(), Object.keys(expected).sort(), `${label}: tensor names`);
      for (const [name, t] of ours.tensors) {
        const ref = expected[name];
        assert.equal(t.dtype, ref.dtype, `${label} ${name}: dtype`);
        assert.deepEqual(t.shape, ref.shape, `${label} ${name}: shape`);
        assert.equal(sha(t.bytes), ref.raw, `${label} ${name}: stored bytes`);
        if (ref.f32) assert.equal(sha(f32bytes(toFloat32(t))), ref.f32, `${label} ${name}: float32 conversion`);
      }
    }

    it('every TorchScript and torch.save file: the same names, dtypes, shapes and bytes as torch', async function () {
      let torchscript = 0;
      for (const f of files) {
        if (reference[f] === null) continue; // torch cannot load it (saved after optimize_for_inference)
        const ours = await readModelFile(f);
        if (ours.format === 'torchscript') torchscript++;
        await assertSame(ours, reference[f], path.basename(f));
      }
      assert.ok(torchscript >= 15, `${torchscript} TorchScript files compared`);
    });

    it('safetensors files (F32, F16, BF16) hold the bytes torch.save holds for the same tensors', async function () {
      for (const name of ['extractor.safetensors', 'extractor_fp16.safetensors', 'interpolator_bf16.safetensors']) {
        const ours = await readModelFile(path.join(made, name));
        assert.equal(ours.format, 'safetensors');
        await assertSame(ours, reference[path.join(made, `${name}.pt`)], name);
      }
    });

    it('views of one storage (transpose, slices, offsets, permutes, empty, 0-d) gather as torch gives them', async function () {
      const ours = await readModelFile(path.join(made, 'strided.pt'));
      assert.deepEqual([...ours.tensors.keys()], ['base', 'transposed', 'slice', 'window', 'permuted', 'half_t', 'scalar', 'empty']);
      await assertSame(ours, reference[path.join(made, 'strided.pt')], 'strided.pt');
    });

    it('FILM extractor weights: source, format, dtype, sizes, and float32 equal to tensor.float()', async function () {
      const cases = [
        [models.default, { source: 'extractor', format: 'torchscript', dtype: 'float32', channels: 64, subLevels: 4 }],
        [models.small, { source: 'extractor', format: 'torchscript', dtype: 'float32', channels: 16, subLevels: 3 }],
        [models.interpolator, { source: 'interpolator', format: 'torchscript', dtype: 'float32', channels: 16, subLevels: 3 }],
        [models.interpolatorFp16, { source: 'interpolator', format: 'torchscript', dtype: 'float16', channels: 16, subLevels: 3 }],
        [models.tinyFilmFp16, { source: 'interpolator', format: 'torchscript', dtype: 'float16', channels: 8, subLevels: 3 }],
        [models.exported, { source: 'interpolator', format: 'torchscript', dtype: 'float32', channels: 8, subLevels: 4 }],
        [path.join(made, 'state_dict.pt'), { source: 'extractor', format: 'torch.save', dtype: 'float32', channels: 64, subLevels: 4 }],
        [path.join(made, 'state_dict_fp16.pt'), { source: 'extractor', format: 'torch.save', dtype: 'float16', channels: 64, subLevels: 4 }],
        [path.join(made, 'state_dict_bf16.pt'), { source: 'extractor', format: 'torch.save', dtype: 'bfloat16', channels: 64, subLevels: 4 }],
        [path.join(made, 'wrapped.pt'), { source: 'extractor', format: 'torch.save', dtype: 'float32', channels: 64, subLevels: 4 }],
        [path.join(made, 'interpolator_state_dict.pt'), { source: 'interpolator', format: 'torch.save', dtype: 'float32', channels: 16, subLevels: 3 }],
        [path.join(made, 'extractor.safetensors'), { source: 'extractor', format: 'safetensors', dtype: 'float32', channels: 64, subLevels: 4 }],
        [path.join(made, 'extractor_fp16.safetensors'), { source: 'extractor', format: 'safetensors', dtype: 'float16', channels: 64, subLevels: 4 }],
        [path.join(made, 'interpolator_bf16.safetensors'), { source: 'interpolator', format: 'safetensors', dtype: 'bfloat16', channels: 16, subLevels: 3 }],
      ];
      for (const [f, expected] of cases) {
        const w = await readExtractorWeights(f);
        const { stages, origin, ...summary } = w;
        assert.deepEqual(summary, expected, f);
        // models/export.py's record of the weights (extra/film_features.json), as fx.info.weights reports it
        if (f === models.default) assert.equal(origin, 'random, seed 0');
        if (f === models.interpolator || f.endsWith('.safetensors')) assert.equal(origin, 'unknown');
        assert.equal(stages.length, expected.subLevels);
        const ref = reference[f] ?? reference[`${f}.pt`];
        const prefix = expected.source === 'interpolator' ? 'extract.' : '';
        stages.forEach((pair, j) => pair.forEach((conv, k) => {
          const name = `${prefix}extract_sublevels.convs.${j}.${k}.0`;
          const width = expected.channels << j;
          const inputs = k ? width : j ? width / 2 : 3;
          assert.ok(conv.weight instanceof Float32Array && conv.weight.length === width * inputs * 9, name);
          assert.equal(conv.bias.length, width, name);
          assert.equal(sha(f32bytes(conv.weight)), ref[`${name}.weight`].f32, `${f} ${name}.weight`);
          assert.equal(sha(f32bytes(conv.bias)), ref[`${name}.bias`].f32, `${f} ${name}.bias`);
        }));
      }
    });

    it('describes how it read the file: no code run', async function () {
      const m = await readModelFile(models.default);
      assert.deepEqual(m.describe, { reader: 'film-features', format: 'torchscript', codeRun: false });
      assert.equal(m.prefix, 'film_extractor/');
      const s = await readModelFile(path.join(made, 'extractor.safetensors'));
      assert.deepEqual(s.describe, { reader: 'film-features', format: 'safetensors', codeRun: false });
    });

    it('a zip rebuilt by this test\'s writer (no zip64, no data descriptors) loads in torch and here alike', async function () {
      const rebuilt = file('rebuilt.pt', writeZip(recordsOf(models.default)));
      const ref = JSON.parse(sh(python, [path.join(__dirname, 'dump_weights.py'), 'dump', rebuilt]))[rebuilt];
      await assertSame(await readModelFile(rebuilt), ref, 'rebuilt.pt');
      assert.deepEqual(ref, reference[models.default]);
    });

    it('a zip whose every size and offset is in zip64 fields reads the same, here and in torch', async function () {
      const rebuilt = file('rebuilt64.pt', writeZip(recordsOf(models.default), { zip64: true }));
      const ref = JSON.parse(sh(python, [path.join(__dirname, 'dump_weights.py'), 'dump', rebuilt]))[rebuilt];
      assert.deepEqual(ref, reference[models.default]);
      await assertSame(await readModelFile(rebuilt), ref, 'rebuilt64.pt');
    });

    it('reads the default 18 MB model quickly (printed; a check against a gross slowdown only)', async function () {
      await readModelFile(models.default);
      const times = [];
      for (let i = 0; i < 5; i++) {
        const t0 = process.hrtime.bigint();
        await readExtractorWeights(models.default);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const best = Math.min(...times);
      console.log(`      readExtractorWeights(models/film_extractor.pt): best ${best.toFixed(1)} ms of ${times.map((t) => t.toFixed(1)).join(', ')}`);
      assert.ok(best < 500, `${best} ms`);
    });
  });

  // --------------------------------------------------------------- hostile ----
  describe('hostile and damaged files: refused cleanly', function () {
    const original = () => fs.readFileSync(models.default);
    const records = () => recordsOf(models.default);
    const withRecord = (name, change) => records().map((r) => (r.name === name ? { ...r, data: change(r.data) } : r));
    const pkl = 'film_extractor/data.pkl';

    async function refuses(p, code, pattern) {
      await assert.rejects(readExtractorWeights(p), (err) => {
        assert.equal(err.code, code, err.message);
        assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
        assert.ok(err.message.includes(p), `names the file: ${err.message}`);
        assert.match(err.message, pattern);
        return true;
      });
    }
    const format = (name, bytes, pattern) => refuses(file(name, bytes), 'ERR_FILM_MODEL_FORMAT', pattern);
    /** A torch.save-like zip whose data.pkl is `pickle`. */
    const pickleZip = (pickle, extra = []) => writeZip([{ name: 'archive/data.pkl', data: b(pickle) }, ...extra]);

    it('files that cannot be read: ERR_FILM_MODEL_FILE', async function () {
      await refuses(path.join(tmp, 'missing.pt'), 'ERR_FILM_MODEL_FILE', /no such file/);
      await refuses(tmp, 'ERR_FILM_MODEL_FILE', /directory/);
      await refuses('/dev/zero', 'ERR_FILM_MODEL_FILE', /not a regular file/);
      if (process.getuid && process.getuid() !== 0) {
        const p = file('locked.pt', original());
        fs.chmodSync(p, 0);
        await refuses(p, 'ERR_FILM_MODEL_FILE', /permission denied/);
      }
    });

    it('not a zip, empty, a legacy torch.save, a zip without data.pkl', async function () {
      await format('text.pt', 'just some text, long enough\n', /not a zip\/safetensors file/);
      await format('empty.pt', '', /is empty/);
      await format('legacy.pt', Buffer.from('80028a0a6cfc9c46f9206aa850190000', 'hex'), /legacy format/);
      await format('nodata.pt', writeZip([{ name: 'x/readme', data: b('hi') }]), /without a data\.pkl/);
      await format('twodata.pt', writeZip([{ name: 'a/data.pkl', data: b('\x80\x02N.') }, { name: 'b/data.pkl', data: b('\x80\x02N.') }]),
        /several data\.pkl/);
    });

    it('a zip truncated at several points', async function () {
      const whole = original();
      for (const at of [4, 30, 1000, 5e6, whole.length - 200, whole.length - 23, whole.length - 1]) {
        await format(`cut-${at}.pt`, whole.subarray(0, at), /too short for a zip|zip end record|past the end|damaged|zip64/);
      }
    });

    it('directory and header offsets past the end, records past the file, overlaps, damaged CRCs', async function () {
      const whole = original();
      // PyTorch's files end in a zip64 record: its directory offset, pointed past the end
      const z64 = Buffer.from(whole);
      const end64 = z64.lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]));
      z64.writeBigUInt64LE(BigInt(whole.length + 100), end64 + 48);
      await format('cd-past-end64.pt', z64, /central directory .* past the end of the file/);
      // the same in a plain zip's end record
      const plain = writeZip(records());
      plain.writeUInt32LE(plain.length + 10, plain.length - 6);
      await format('cd-past-end.pt', plain, /central directory .* past the end of the file/);

      const recs = records();
      const far = recs.map((r, i) => (i === 3 ? { ...r, centralOffset: 0xfffffff0 } : r));
      await format('local-past-end.pt', writeZip(far), /local header offset 4294967280 is past the end/);
      const wrong = recs.map((r, i) => (i === 3 ? { ...r, centralOffset: 5 } : r));
      await format('local-wrong.pt', writeZip(wrong), /no local header at offset 5/);
      const huge = recs.map((r, i) => (i === 1 ? { ...r, centralSize: 0x7ffffff0, centralCompressed: 0x7ffffff0 } : r));
      await format('record-past-end.pt', writeZip(huge), /claims 2147483632 bytes .* past the end/);
      const over = recs.map((r, i) => (i === 1 ? { ...r, centralSize: r.data.length + 100, centralCompressed: r.data.length + 100 } : r));
      await format('overlap.pt', writeZip(over), /overlap/);
      const damaged = recs.map((r) => (r.name === 'film_extractor/data/3'
        ? { ...r, data: Buffer.from(r.data).fill(7, 7, 8), crc: zlib.crc32(r.data) } : r));
      await format('crc.pt', writeZip(damaged), /record "film_extractor\/data\/3" is damaged/);
    });

    it('zip64: fields missing from the extra field, an end record of all ones without zip64 records', async function () {
      await format('z64-short.pt', writeZip(records(), { zip64: true, zip64Fields: 2 }), /zip64 field lacks its header offset/);
      const plain = writeZip(records());
      plain.writeUInt32LE(0xffffffff, plain.length - 6);
      await format('z64-missing.pt', plain, /says it is a zip64 file but has no zip64 end record/);
      await format('big-endian.pt', pickleZip('\x80\x02}.', [{ name: 'archive/byteorder', data: b('big') }]),
        /tensors are stored "big"-endian/);
    });

    it('record names: duplicates, .., absolute paths', async function () {
      const one = { name: 'archive/data.pkl', data: b('\x80\x02}.') };
      await format('dup.pt', writeZip([one, one]), /two records named "archive\/data.pkl"/);
      await format('dotdot.pt', writeZip([one, { name: 'archive/../../etc/passwd', data: b('x') }]), /not a relative path/);
      await format('abs.pt', writeZip([one, { name: '/etc/passwd', data: b('x') }]), /not a relative path/);
      await format('backslash.pt', writeZip([one, { name: 'archive\\..\\x', data: b('x') }]), /not a relative path/);
    });

    it('a weight record cut to 16 bytes, a storage or tensor of 2^40 elements', async function () {
      await format('cut-record.pt', writeZip(withRecord('film_extractor/data/0', (d) => d.subarray(0, 16))),
        /"extract_sublevels\.convs\.0\.0\.0\.weight".* holds 16 bytes, its storage claims 1728 float32 elements/);
      // size (64, 3, 3, 3) -> (2^40,), stride (27, 9, 3, 1) -> (1,) of the first weight
      const big = withRecord(pkl, (d) => patch(patch(d, b('(K@K\x03K\x03K\x03t'), b('(', long1(2n ** 40n), 't')),
        b('(K\x1bK\tK\x03K\x01t'), b('(K\x01t')));
      await format('numel-2e40.pt', writeZip(big), /convs\.0\.0\.0\.weight" of shape \[1099511627776\] has more elements than its bytes/);
      // the storage itself claims 2^40 elements (BININT2 1728 in its persistent id)
      const storage = withRecord(pkl, (d) => patch(d, b('M\xc0\x06t'), b(long1(2n ** 40n), 't')));
      await format('storage-2e40.pt', writeZip(storage), /storage claims 1099511627776 float32 elements/);
    });

    it('negative or huge strides and storage offsets', async function () {
      const stride = (to) => writeZip(withRecord(pkl, (d) => patch(d, b('(K\x1bK\tK\x03K\x01t'), to)));
      await format('stride-neg.pt', stride(b('(', binint(-27), 'K\tK\x03K\x01t')), /has a stride of -27/);
      await format('stride-huge.pt', stride(b('(', long1(2n ** 50n), 'K\tK\x03K\x01t')), /reaches element .* past its storage of 1728/);
      await format('stride-bigint.pt', stride(b('(', long1(2n ** 70n), 'K\tK\x03K\x01t')), /a tensor stride is bigint, not an integer/);
      const offset = (to) => writeZip(withRecord(pkl, (d) => patch(d, b('K\x00(K@K\x03K\x03K\x03t'), b(to, '(K@K\x03K\x03K\x03t'))));
      await format('offset-neg.pt', offset(binint(-1)), /storage offset of -1/);
      await format('offset-huge.pt', offset(long1(2n ** 36n)), /reaches element 68719478463, past its storage of 1728/);
      await format('offset-end.pt', offset(b('K\x01')), /reaches element 1728, past its storage of 1728/);
    });

    it('pickles: unknown opcodes, globals outside the allowlist, memo abuse, stack underflow', async function () {
      await format('op-ff.pt', pickleZip('\x80\x02\xff.'), /data\.pkl: 0xff is not a pickle opcode \(0xff at byte 2\)/);
      await format('op-inst.pt', pickleZip('\x80\x02(i os\nsystem\n.'), /opcode INST is not one PyTorch writes/);
      await format('op-persid.pt', pickleZip('\x80\x02P0\n.'), /opcode PERSID/);
      await format('os-system.pt', pickleZip('\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.'), /global "os\.system" is not allowed/);
      await format('eval.pt', pickleZip('\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x031+1\x85R.'), /global "builtins\.eval" is not allowed/);
      await format('getattr.pt', pickleZip('\x80\x02c__builtin__\ngetattr\n.'), /global "__builtin__\.getattr" is not allowed/);
      await format('torch-reduce.pt', pickleZip('\x80\x02c__torch__\nM\n)R.'), /calls "__torch__\.M", which is not a function/);
      await format('binget.pt', pickleZip('\x80\x02h\x05.'), /memo entry 5 was never stored/);
      await format('long-binget.pt', pickleZip('\x80\x02Nr\xff\xff\xff\xffj\xfe\xff\xff\xff.'), /memo entry 4294967294 was never stored/);
      const memo = Buffer.alloc(2 + 1 + 5 * 1_000_001 + 1);
      memo.write('\x80\x02N', 'latin1');
      for (let i = 0; i <= 1_000_000; i++) { memo[3 + 5 * i] = 0x72; memo.writeUInt32LE(i * 7, 4 + 5 * i); }
      memo[memo.length - 1] = 0x2e;
      await format('memo-flood.pt', pickleZip(memo), /memo grows past 1000000 entries/);
      await format('underflow.pt', pickleZip('\x80\x020.'), /stack underflow/);
      await format('underflow-mark.pt', pickleZip('\x80\x02N(a.'), /stack underflow/);
      await format('no-mark.pt', pickleZip('\x80\x02t.'), /no MARK/);
      await format('no-stop.pt', pickleZip('\x80\x02N'), /ends without STOP/);
      await format('long-string.pt', pickleZip('\x80\x02X\xff\xff\xff\x7fab.'), /needs 2147483647 more bytes/);
      await format('bytes8.pt', pickleZip(b('\x80\x04\x8e', Buffer.from('0000000000000010', 'hex'), '.')), /longer than the record/);
      await format('proto-1.pt', pickleZip('\x80\x01N.'), /protocol 1/);
      await format('not-storage.pt', pickleZip('\x80\x02(X\x03\x00\x00\x00fooK\x01tQ.'), /persistent id that is not \('storage'/);
      await format('list-root.pt', pickleZip('\x80\x02].'), /holds a list, neither a TorchScript module nor a state_dict/);
    });

    it('200,000 nested lists, tuples or marks: a clean error (libtorch recurses and crashes on these)', async function () {
      const n = 200_000;
      await format('deep-lists.pt', pickleZip(b('\x80\x02', ']'.repeat(n), 'a'.repeat(n - 1), '.')), /containers nest deeper than 1000/);
      await format('deep-list-marks.pt', pickleZip(b('\x80\x02', '('.repeat(n), 'l'.repeat(n), '.')), /MARKs nest deeper than 10000/);
      await format('deep-tuples.pt', pickleZip(b('\x80\x02)', '\x85'.repeat(n), '.')), /containers nest deeper than 1000/);
      await format('deep-dicts.pt', pickleZip(b('\x80\x02}', 'X\x01\x00\x00\x00k}'.repeat(n - 1), 's'.repeat(n - 1), '.')),
        /containers nest deeper than 1000/);
      // modules nested through their state, each one level
      const modules = b('\x80\x02', 'c__torch__\nM\n)\x81}X\x01\x00\x00\x00a'.repeat(2000), 'N', 'sb'.repeat(2000), '.');
      await format('deep-modules.pt', pickleZip(modules), /containers nest deeper than 1000/);
      // shallower for the unpickler, too deep for the walk over modules; and a module inside itself
      const some = b('\x80\x02', 'c__torch__\nM\n)\x81}X\x01\x00\x00\x00a'.repeat(300), 'N', 'sb'.repeat(300), '.');
      await format('deep-modules-300.pt', pickleZip(some), /modules nest deeper than 256/);
      await format('module-cycle.pt', pickleZip('\x80\x02c__torch__\nM\n)\x81q\x00}X\x01\x00\x00\x00ah\x00sb.'),
        /modules nest deeper than 256/);
    });

    it('DEFLATE bombs: a 1 KB record claiming 1 GB, and one inflating past its declared size', async function () {
      const claims = zlib.deflateRawSync(crypto.randomBytes(1024));
      await format('bomb-claim.pt', writeZip([
        { name: 'archive/data.pkl', method: 8, compressed: claims, size: 2 ** 30, crc: 0 },
      ]), /claims 1073741824 bytes from \d+ compressed \(a zip bomb\?\)/);
      const zeros = zlib.deflateRawSync(Buffer.alloc(50 * 1024 * 1024));
      await format('bomb-inflate.pt', writeZip([
        { name: 'archive/data.pkl', method: 8, compressed: zeros, size: 100 * 1024, crc: 0 },
      ]), /does not inflate to its declared 102400 bytes/);
      // a good deflated data.pkl is read
      const ok = writeZip([...records().map((r) => (r.name === pkl
        ? { ...r, method: 8, compressed: zlib.deflateRawSync(r.data) } : r))]);
      assert.equal((await readExtractorWeights(file('deflated.pt', ok))).channels, 64);
    });

    it('safetensors: a header length of 2^60, offsets past the end, sizes that disagree, bad JSON', async function () {
      const st = (header, data = Buffer.alloc(64)) => {
        const text = Buffer.from(JSON.stringify(header));
        const len = Buffer.alloc(8);
        len.writeBigUInt64LE(BigInt(text.length));
        return Buffer.concat([len, text, data]);
      };
      const huge = st({});
      huge.writeBigUInt64LE(2n ** 60n);
      await format('st-2e60.safetensors', huge, /header length 1152921504606846976 is past the end/);
      const w = 'extract_sublevels.convs.0.0.0.weight';
      await format('st-past.safetensors', st({ [w]: { dtype: 'F32', shape: [64, 3, 3, 3], data_offsets: [0, 6912] } }),
        /convs\.0\.0\.0\.weight": data_offsets \[0, 6912\] are outside the data \(64 bytes\)/);
      await format('st-size.safetensors', st({ [w]: { dtype: 'F32', shape: [4, 5], data_offsets: [0, 64] } }),
        /needs 80 bytes, its data_offsets give 64/);
      await format('st-numel.safetensors', st({ [w]: { dtype: 'F32', shape: [2 ** 20, 2 ** 20], data_offsets: [0, 64] } }),
        /more elements than its bytes can hold/);
      await format('st-dtype.safetensors', st({ [w]: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }), /dtype "F8_E4M3", which is not read/);
      await format('st-overlap.safetensors', st({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }),
        /"a" and "b" overlap/);
      const bad = st({ a: 1 });
      bad.write('{"a":', 8, 'latin1');
      bad.write('@', 13, 'latin1');
      await format('st-json.safetensors', bad, /header is not JSON/);
    });

    it('wrong architecture: the error names the tensor and both shapes', async function () {
      // (64, 3, 3, 3) -> (64, 3, 3, 1) in the TorchScript file's data.pkl, strides to match
      const narrow = withRecord(pkl, (d) => patch(patch(d, b('(K@K\x03K\x03K\x03t'), b('(K@K\x03K\x03K\x01t')),
        b('(K\x1bK\tK\x03K\x01t'), b('(K\x09K\x03K\x01K\x01t')));
      await format('narrow.pt', writeZip(narrow),
        /is not a FILM feature extractor: extract_sublevels\.convs\.0\.0\.0\.weight has shape \[64, 3, 3, 1\], expected \[64, 3, 3, 3\]/);
      // torch.save files where one conv has the wrong width, or one is missing
      const out = path.join(tmp, 'arch');
      sh(python, ['-c', `
import torch, os
os.makedirs(${JSON.stringify(out)}, exist_ok=True)
sd = torch.jit.load(${JSON.stringify(models.default)}).state_dict()
sd['extract_sublevels.convs.2.1.0.weight'] = torch.zeros(256, 200, 3, 3)
torch.save(sd, ${JSON.stringify(path.join(out, 'wide.pt'))})
del sd['extract_sublevels.convs.3.0.0.bias']
sd['extract_sublevels.convs.2.1.0.weight'] = torch.zeros(256, 256, 3, 3)
torch.save(sd, ${JSON.stringify(path.join(out, 'missing.pt'))})
sd = torch.jit.load(${JSON.stringify(models.default)}).state_dict()
sd['extract_sublevels.convs.1.0.0.bias'] = sd['extract_sublevels.convs.1.0.0.bias'].double()
torch.save(sd, ${JSON.stringify(path.join(out, 'mixed.pt'))})
torch.save({k: v.double() for k, v in sd.items()}, ${JSON.stringify(path.join(out, 'double.pt'))})`]);
      await refuses(path.join(out, 'wide.pt'), 'ERR_FILM_MODEL_FORMAT',
        /extract_sublevels\.convs\.2\.1\.0\.weight has shape \[256, 200, 3, 3\], expected \[256, 256, 3, 3\]/);
      await refuses(path.join(out, 'missing.pt'), 'ERR_FILM_MODEL_FORMAT', /extract_sublevels\.convs\.3\.0\.0 is missing/);
      await refuses(path.join(out, 'mixed.pt'), 'ERR_FILM_MODEL_FORMAT', /"extract_sublevels\.convs\.1\.0\.0\.bias" is float64, the others float32/);
      await refuses(path.join(out, 'double.pt'), 'ERR_FILM_MODEL_FORMAT', /weights are float64; float32, float16 and bfloat16 are read/);
      await refuses(models.noExtract, 'ERR_FILM_MODEL_FORMAT', /not a FILM feature extractor: it has no extract_sublevels/);
    });

    // Random damage, seeded: each file is read or refused by a deliberate check (never by a
    // TypeError or RangeError that index.ts would wrap as 'cannot be read (...)').
    it('fuzz: 600 damaged data.pkl records and 600 damaged zip directories, each read or refused by a check', function () {
      let seed = 12345;
      const random = () => { // mulberry32
        seed = (seed + 0x6d2b79f5) >>> 0;
        let t = seed;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      const small = recordsOf(models.small);
      const pklName = small.find((r) => r.name.endsWith('/data.pkl')).name;
      const whole = fs.readFileSync(models.small);
      const directory = whole.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), whole.length - 1);
      const cdStart = whole.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
      const outcomes = { read: 0, refused: 0 };
      const attempt = (bytes) => {
        try {
          parseModelFile('fuzzed.pt', bytes);
          outcomes.read++;
        } catch (err) {
          assert.equal(err.code, 'ERR_FILM_MODEL_FORMAT', err.stack);
          assert.ok(!err.message.includes('cannot be read (') && !err.message.includes('\n'), err.message);
          outcomes.refused++;
        }
      };
      for (let i = 0; i < 600; i++) {
        const pickle = Buffer.from(small.find((r) => r.name === pklName).data);
        for (let k = 1 + Math.floor(random() * 3); k > 0; k--) pickle[Math.floor(random() * pickle.length)] = Math.floor(random() * 256);
        attempt(writeZip(small.map((r) => (r.name === pklName ? { ...r, data: pickle } : r))));
      }
      for (let i = 0; i < 600; i++) {
        const bytes = Buffer.from(whole);
        const from = i % 2 ? cdStart : directory;
        for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
          bytes[from + Math.floor(random() * (bytes.length - from))] = Math.floor(random() * 256);
        }
        attempt(bytes);
      }
      console.log(`      fuzz: ${JSON.stringify(outcomes)}`);
      assert.ok(outcomes.refused > 300, JSON.stringify(outcomes));
    });

    it('the files libtorch itself mishandles, through FeatureExtractor.load and Interpolator.load in a child process: refused with a code, the process lives', function () {
      // libtorch's unpickler recurses into SIGSEGV on the first; it loads the second and reads past
      // the record. Our reader refuses both before libtorch sees them (the core build: likewise).
      const deep = file('load-deep-lists.pt', writeZip(records().map((r) => (r.name === pkl
        ? { ...r, data: b('\x80\x02', ']'.repeat(200_000), 'a'.repeat(199_999), '.') } : r))));
      const cut = file('load-cut-record.pt', writeZip(withRecord('film_extractor/data/0', (d) => d.subarray(0, 16))));
      const script = `
        const { FeatureExtractor, Interpolator } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
        (async () => {
          const out = [];
          for (const f of ${JSON.stringify([deep, cut])}) {
            for (const load of [(p) => FeatureExtractor.load(p, { device: 'cpu' }), (p) => Interpolator.load(p, { device: 'cpu' })]) {
              try { await load(f); out.push('loaded'); } catch (err) { out.push(err.code); }
            }
          }
          console.log(JSON.stringify(out));
        })();`;
      const r = require('node:child_process').spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120000 });
      assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
      const core = require('../dist/native').native().build === 'core';
      // the core's Interpolator.load says it needs libtorch only after the file passed the reader
      assert.deepEqual(JSON.parse(r.stdout), Array(4).fill('ERR_FILM_MODEL_FORMAT'), core ? 'core build' : 'full build');
    });

    it('parseModelFile over bytes in memory reads the same and refuses the same', async function () {
      const a = parseModelFile('in-memory', original());
      const c = await readModelFile(models.default);
      assert.deepEqual([...a.tensors.keys()], [...c.tensors.keys()]);
      assert.throws(() => parseModelFile('in-memory', Buffer.from('PK\x03\x04 and nothing else, nothing at all')),
        (err) => err.code === 'ERR_FILM_MODEL_FORMAT' && /'in-memory' has no zip end record/.test(err.message));
    });
  });
});
