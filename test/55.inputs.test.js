'use strict';
// The inputs people have: sharp's {data, info} as it comes, Buffers, ImageData-like objects;
// float checks (NaN, 0-255 by mistake); TypeScript types that take them without casts.
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
require('./fixtures').need('sharp'); // before sharp is required: a missing one fails loudly
const sharp = require('sharp');
const { FeatureExtractor, imageToTensor } = require('..');
const { native } = require('../dist/native');
const { loadNative } = require('./helpers');
const { models, randomTensor, root } = require('./fixtures');

const sample = path.join(root, 'models', 'sample.png');
const tsc = (project) => spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', project], { encoding: 'utf8' });

describe('inputs', () => {
  let fx;
  let raw; // sharp's output for the sample, cropped small
  let reference; // the same pixels through the TypeScript imageToTensor
  before(async () => {
    fx = await FeatureExtractor.load(models.default, { device: 'cpu' });
    raw = await sharp(sample).extract({ left: 0, top: 0, width: 48, height: 40 }).removeAlpha().raw()
      .toBuffer({ resolveWithObject: true });
    const { width, height, channels } = raw.info;
    reference = await fx.extract(imageToTensor({ data: raw.data, width, height, channels }), { levels: 4 });
  });
  after(() => fx.dispose());
  const same = (out) => out.forEach((level, i) => assert.deepEqual(level.data, reference[i].data, `level ${i}`));

  it("sharp's {data, info} as it comes; 8-bit pixels convert natively exactly as imageToTensor does", async () => {
    assert.ok(Buffer.isBuffer(raw.data));
    same(await fx.extract(raw, { levels: 4 }));
  });

  it('RGBA from sharp: alpha dropped, the same features', async () => {
    const rgba = await sharp(raw.data, { raw: raw.info }).ensureAlpha(0.5).raw().toBuffer({ resolveWithObject: true });
    assert.equal(rgba.info.channels, 4);
    same(await fx.extract(rgba, { levels: 4 }));
  });

  it('a Node Buffer, and ImageData-like {data, width, height} with channels from the length', async () => {
    const { width, height } = raw.info;
    same(await fx.extract({ data: Buffer.from(raw.data), width, height, channels: 3 }, { levels: 4 }));
    const rgba = new Uint8ClampedArray(width * height * 4);
    for (let p = 0; p < width * height; p++) {
      rgba.set(raw.data.subarray(3 * p, 3 * p + 3), 4 * p);
      rgba[4 * p + 3] = 255;
    }
    same(await fx.extract({ data: rgba, width, height }, { levels: 4 }));
  });

  it('16-bit pixels: a message that says so and how to get 8-bit', async () => {
    const deep = await sharp(raw.data, { raw: raw.info }).toColourspace('rgb16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
    assert.equal(deep.data.length, 2 * raw.data.length);
    const hint = /16-bit pixels are not taken; pass 8 bits per sample, e\.g\. sharp\(input\)\.toColourspace\('srgb'\)/;
    await assert.rejects(fx.extract(deep), (err) => err.code === 'ERR_OUT_OF_RANGE' && hint.test(err.message));
    const { width, height } = raw.info;
    await assert.rejects(fx.extract({ data: new Uint16Array(deep.data.buffer, deep.data.byteOffset, deep.data.length / 2), width, height }),
      (err) => err.code === 'ERR_INVALID_ARG_TYPE' && hint.test(err.message));
  });

  it('pixels in a SharedArrayBuffer (as worker pools share frames) are read like any others', async () => {
    const { width, height, channels } = raw.info;
    const shared = (view, offset = 0) => {
      const bytes = offset * view.BYTES_PER_ELEMENT;
      const out = new view.constructor(new SharedArrayBuffer(view.byteLength + bytes), bytes, view.length);
      out.set(view);
      return out;
    };
    same(await fx.extract({ data: shared(raw.data, 3), info: raw.info }, { levels: 4 }));
    same(await fx.extract({ data: shared(new Uint8ClampedArray(raw.data)), width, height, channels }, { levels: 4 }));
    const tensor = imageToTensor({ data: raw.data, width, height, channels });
    same(await fx.extract({ data: shared(tensor.data, 5), shape: tensor.shape }, { levels: 4 }));
    // the binding directly: no "Invalid argument" without a code
    const handle = await loadNative(models.default, 'cpu', 1, false);
    try {
      const out = await handle.run([{ data: shared(tensor.data), shape: tensor.shape }], 4, 1, 0).promise;
      out.forEach((level, i) => assert.deepEqual(level.data, reference[i].data, `level ${i}`));
      assert.equal(typeof native()._internal.dataAddress(shared(tensor.data, 2)), 'bigint');
    } finally {
      handle.dispose();
    }
  });

  it('every byte value maps to v / 255 exactly as in TypeScript', async () => {
    const handle = await loadNative(models.default, 'cpu', 1, false);
    try {
      const bytes = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256);
      // a 16x16 image holding each value once per channel (shifted per channel)
      const data = new Uint8Array(16 * 16 * 3);
      for (let p = 0; p < 256; p++) for (let c = 0; c < 3; c++) data[3 * p + c] = bytes[p + 85 * c];
      const a = await handle.run([{ data, shape: [1, 3, 16, 16] }], 1).promise;
      const b = await handle.run([imageToTensor({ data, width: 16, height: 16, channels: 3 })], 1).promise;
      assert.deepEqual(a[0].data, b[0].data);
    } finally {
      handle.dispose();
    }
  });

  it('grey images (1 or 2 channels) are a RangeError that says what to do', async () => {
    const grey = await sharp(raw.data, { raw: raw.info }).greyscale().toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    assert.equal(grey.info.channels, 1);
    await assert.rejects(fx.extract(grey), (err) => err instanceof RangeError && /image\.info\.channels/.test(err.message) && /toColourspace/.test(err.message));
    await assert.rejects(fx.extract({ data: grey.data, width: grey.info.width, height: grey.info.height }), /3 or 4 channels need/);
  });

  it('a NaN in a float input is a RangeError naming its position', async () => {
    const t = randomTensor([1, 3, 8, 10], 2);
    t.data[1 * 80 + 3 * 10 + 7] = NaN;
    await assert.rejects(fx.extract(t), (err) => err instanceof RangeError && err.code === 'ERR_OUT_OF_RANGE' &&
      err.message === 'image.data[117] (n 0, c 1, y 3, x 7) is NaN');
  });

  it('0-255 floats, Infinity: a RangeError that says to divide by 255; values slightly outside [0, 1] are fine', async () => {
    const t = randomTensor([1, 3, 8, 8], 3);
    t.data[5] = 254;
    await assert.rejects(fx.extract(t), (err) => err instanceof RangeError && /image\.data\[5\].*is 254.*divide 0-255 data by 255/.test(err.message));
    t.data[5] = -Infinity;
    await assert.rejects(fx.extract(t), /image\.data\[5\]/);
    t.data[5] = 1.05; // a sharpening filter's overshoot
    t.data[6] = -0.05;
    assert.equal((await fx.extract(t)).length, 4);
  });

  it('pyramid levels are checked the same way', async () => {
    const p = [randomTensor([1, 3, 8, 8], 4), randomTensor([1, 3, 4, 4], 5)];
    p[1].data[2] = NaN;
    await assert.rejects(fx.extractPyramid(p), /pyramid\[1\]\.data\[2\] .* is NaN/);
  });

  it("TypeScript (--strict) takes sharp's {data, info}, info.channels, ImageData and Buffers without casts", () => {
    const ok = tsc(path.join(__dirname, 'types'));
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    const bad = tsc(path.join(__dirname, 'types', 'bad.json'));
    assert.notEqual(bad.status, 0);
    for (const line of [5, 6, 7]) assert.match(bad.stdout, new RegExp(`bad\\.ts\\(${line},`), `line ${line} must not compile`);
  });
});
