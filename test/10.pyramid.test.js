'use strict';
const assert = require('node:assert/strict');
const { buildPyramid, padToMultiple, cropLevel, imageToTensor } = require('..');
const { reference, relativeError } = require('./fixtures');

describe('buildPyramid', () => {
  it('averages 2x2 blocks and floors odd sizes (hand-computed)', () => {
    // 3 channels of 3x5; channel 1 holds the values, the last row and column drop out
    const image = { data: new Float32Array(45), shape: [1, 3, 3, 5] };
    image.data.set([1, 2, 3, 4, 99, 5, 6, 7, 8, 99, 99, 99, 99, 99, 99], 15);
    const [, pooled] = buildPyramid(image, 2);
    assert.deepEqual(pooled.shape, [1, 3, 1, 2]);
    assert.deepEqual(Array.from(pooled.data), [0, 0, (1 + 2 + 5 + 6) / 4, (3 + 4 + 7 + 8) / 4, 0, 0]);
  });

  it('returns the input itself as level 0, without a copy', () => {
    const image = { data: new Float32Array(3 * 8 * 8), shape: [1, 3, 8, 8] };
    const pyramid = buildPyramid(image, 4);
    assert.equal(pyramid[0], image);
    assert.deepEqual(pyramid.map((l) => l.shape), [[1, 3, 8, 8], [1, 3, 4, 4], [1, 3, 2, 2], [1, 3, 1, 1]]);
  });

  it('matches F.avg_pool2d for odd sizes and batch 2', function () {
    for (const c of reference()) {
      const ours = buildPyramid(c.pyramid[0], c.levels);
      assert.equal(ours.length, c.levels);
      ours.forEach((level, i) => {
        assert.deepEqual(level.shape, c.pyramid[i].shape, `${c.name} level ${i} shape`);
        const err = relativeError(level.data, c.pyramid[i].data);
        assert.ok(err <= 1e-6, `${c.name} level ${i}: relative error ${err}`);
      });
    }
  });

  it('rejects level counts the image cannot hold', () => {
    const image = { data: new Float32Array(3 * 63 * 200), shape: [1, 3, 63, 200] };
    assert.throws(() => buildPyramid(image, 7), RangeError); // 63 >> 6 = 0
    assert.equal(buildPyramid(image, 6).at(-1).shape[2], 1);
    assert.throws(() => buildPyramid(image, 0), RangeError);
    assert.throws(() => buildPyramid(image, 1.5), RangeError);
    assert.throws(() => buildPyramid(image, '2'), TypeError);
  });
});

describe('padToMultiple', () => {
  it('pads with zeros, the smaller half on top and left', () => {
    const data = Float32Array.from({ length: 3 * 2 * 3 }, (_, i) => i + 1);
    const { tensor, crop } = padToMultiple({ data, shape: [1, 3, 2, 3] }, 4);
    assert.deepEqual(tensor.shape, [1, 3, 4, 4]);
    assert.deepEqual(crop, { top: 1, left: 0, height: 2, width: 3 });
    // channel 0: rows 1-2, columns 0-2 hold 1..6
    assert.deepEqual(Array.from(tensor.data.subarray(0, 16)), [0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(tensor.data.subarray(16, 20)), [0, 0, 0, 0]);
    assert.equal(tensor.data[20], 7);
  });

  it('returns the input when it already fits, and crops back', () => {
    const image = { data: new Float32Array(3 * 64 * 128), shape: [1, 3, 64, 128] };
    assert.equal(padToMultiple(image, 64).tensor, image);
    const odd = { data: Float32Array.from({ length: 3 * 5 * 7 }, (_, i) => i), shape: [1, 3, 5, 7] };
    const { tensor, crop } = padToMultiple(odd, 8);
    assert.deepEqual(crop, { top: 1, left: 0, height: 5, width: 7 });
    assert.deepEqual(cropLevel(tensor, crop, 0), odd);
  });
});

describe('imageToTensor', () => {
  it('turns interleaved RGBA bytes into planar floats in [0, 1], dropping alpha', () => {
    const data = Uint8ClampedArray.from([255, 0, 51, 7, 0, 102, 255, 9]); // 2x1 RGBA
    const t = imageToTensor({ data, width: 2, height: 1, channels: 4 });
    assert.deepEqual(t.shape, [1, 3, 1, 2]);
    assert.deepEqual(Array.from(t.data), [1, 0, 0, 0.4, 0.2, 1].map(Math.fround));
  });

  it('rejects bad images with the right class', () => {
    assert.throws(() => imageToTensor({ data: [1, 2, 3], width: 1, height: 1, channels: 3 }), TypeError);
    assert.throws(() => imageToTensor({ data: new Uint8Array(3), width: 1, height: 1, channels: 2 }), RangeError);
    assert.throws(() => imageToTensor({ data: new Uint8Array(5), width: 1, height: 2, channels: 3 }), /needs 6/);
  });
});
