'use strict';
// Type tags in the binding (native/tagged_external.h): the native classes take only the External
// that load() made for that class, and their methods only an instance of that class. Anything else
// (a frame run's held levels, the other class's handoff, a plain object, another instance) is a
// TypeError, and the process goes on: before, the constructor cast any External to its model and
// aborted (SIGABRT), and run() cast any wrapped object to its class.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { framePlan, runFrameHeld } = require('../dist/frame-plan');
const { models } = require('./fixtures');
const { loadNative, loadNativeInterpolator } = require('./helpers');

const pad = { height: 64, width: 96, top: 0, left: 0 };
const image = { data: Uint8Array.from({ length: 64 * 96 * 3 }, (_, i) => (i * 37) % 251), shape: [1, 3, 64, 96] };

describe('binding type tags', function () {
  this.timeout(120000);
  let fx;
  let extractor;
  let interpolator;
  let held;
  before(async () => {
    fx = await FeatureExtractor.load(models.default, { device: 'cpu', threads: 1 });
    held = await fx[runFrameHeld](image, framePlan(pad, [0, 1], null, false));
    extractor = await loadNative(models.default, 'cpu', 1, false);
    interpolator = await loadNativeInterpolator(models.tinyFilm, 'cpu', 1, false);
  });
  after(() => {
    native().releaseLevels(held.levels);
    fx.dispose();
    extractor.dispose();
    interpolator.dispose();
  });

  const madeBy = (name) => (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE' &&
    err.message === `${name} is made by load(), not constructed`;

  for (const [name, handle] of [['NativeExtractor', () => extractor], ['NativeInterpolator', () => interpolator]]) {
    it(`new ${name}(held levels): a TypeError, and the process goes on`, () => {
      const Class = handle().constructor;
      assert.equal(Class.name, name);
      assert.throws(() => new Class(held.levels), madeBy(name));
    });

    it(`new ${name}(anything but its own handoff): a TypeError`, () => {
      const Class = handle().constructor;
      for (const value of [undefined, null, 1, 'x', {}, [], () => 0, handle(), extractor, interpolator]) {
        assert.throws(() => new Class(value), madeBy(name), String(value));
      }
      assert.throws(() => new Class(), madeBy(name));
      assert.throws(() => new Class(held.levels, held.levels), madeBy(name));
    });
  }

  it("each class refuses the other's handoff, and takes its own", async () => {
    const ofExtractor = native()._internal.handoffOf(extractor);
    const ofInterpolator = native()._internal.handoffOf(interpolator);
    assert.throws(() => new interpolator.constructor(ofExtractor), madeBy('NativeInterpolator'));
    assert.throws(() => new extractor.constructor(ofInterpolator), madeBy('NativeExtractor'));
    // a model's handoff is not held levels either
    assert.throws(() => native().releaseLevels(ofExtractor), TypeError);
    assert.throws(() => native().writeFiles('/nonexistent', false, [{ name: 'a', parts: [0] }], ofInterpolator, false), TypeError);
    // the right class takes it: a second handle on the same model, which runs
    const again = new extractor.constructor(ofExtractor);
    assert.equal(again.device, 'cpu');
    const [level] = await again.run([{ data: new Float32Array(3 * 16 * 16), shape: [1, 3, 16, 16] }], 1, 1, 0).promise;
    assert.deepEqual(level.shape, [1, 64, 16, 16]);
    again.dispose();
    // a handoff is taken once
    assert.throws(() => new extractor.constructor(ofExtractor), madeBy('NativeExtractor'));
    assert.equal(extractor.device, 'cpu', 'the first handle still holds the model');
  });

  it("methods and accessors take only an instance of their class: another class's is a TypeError", () => {
    const E = extractor.constructor.prototype;
    const I = interpolator.constructor.prototype;
    const device = (proto) => Object.getOwnPropertyDescriptor(proto, 'device').get;
    const info = (proto) => Object.getOwnPropertyDescriptor(proto, 'info').get;
    const input = [{ data: new Float32Array(3 * 16 * 16), shape: [1, 3, 16, 16] }];
    for (const [proto, other, name] of [[E, interpolator, 'NativeExtractor'], [I, extractor, 'NativeInterpolator']]) {
      const expected = { name: 'TypeError', message: `Expected a ${name}` };
      assert.throws(() => proto.run.call(other, input, input, [0.5], 0, 1, 0), expected);
      assert.throws(() => proto.dispose.call(other), expected);
      assert.throws(() => device(proto).call(other), expected);
      assert.throws(() => info(proto).call(other), expected);
      for (const value of [{}, Object.create(other), held.levels, undefined]) {
        assert.throws(() => proto.run.call(value, input), expected);
      }
    }
    // and on their own, as before
    assert.equal(device(E).call(extractor), 'cpu');
    assert.equal(info(I).call(interpolator).dtype, 'float32');
  });

  it('a held-levels External given to a constructor no longer takes the process down (child process)', () => {
    const script = `
      const { native } = require('./dist/native');
      const { FeatureExtractor } = require('.');
      const { framePlan, runFrameHeld } = require('./dist/frame-plan');
      (async () => {
        const fx = await FeatureExtractor.load(${JSON.stringify(models.default)}, { device: 'cpu', threads: 1 });
        const image = { data: new Uint8Array(64 * 96 * 3), shape: [1, 3, 64, 96] };
        const held = await fx[runFrameHeld](image, framePlan(${JSON.stringify(pad)}, [0], null, false));
        const handle = await require('./test/helpers').loadNative(${JSON.stringify(models.default)});
        let caught;
        try { new handle.constructor(held.levels); } catch (err) { caught = err.constructor.name; }
        handle.dispose();
        fx.dispose();
        process.stdout.write(String(caught));
      })();`;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..'), encoding: 'utf8', timeout: 110000 });
    assert.equal(r.signal, null, `the child died of ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'TypeError');
  });
});
