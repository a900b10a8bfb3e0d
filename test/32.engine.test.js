'use strict';
// The CPU engine switch: options.engine, FILM_FEATURES_ENGINE, what fx.info says, and a file whose
// forward is not FILM's network (the oneDNN engine runs the network from the weights, so it must
// notice). Parity of both engines with the reference: test/30.parity and test/25.real-weights.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { FeatureExtractor } = require('..');
const { native } = require('../dist/native');
const { dir, models, python, randomTensor, relativeError, sh, cpuEngines } = require('./fixtures');
const { requireHere } = require('./helpers');

const onednn = native().onednnCompiledIn;

// oneDNN is part of the build this checkout makes (npm install apt-installs libdnnl-dev): a build
// without it fails these tests rather than leaving them pending.
function needOnednn() {
  requireHere([onednn, "the fused oneDNN engine (this addon was built without oneDNN)",
    'apt-get install libdnnl-dev, then npm run build']);
}

/** Runs `fn` with FILM_FEATURES_ENGINE set to `value`, then puts the variable back. */
async function withEngineVariable(value, fn) {
  const saved = process.env.FILM_FEATURES_ENGINE;
  process.env.FILM_FEATURES_ENGINE = value;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.FILM_FEATURES_ENGINE;
    else process.env.FILM_FEATURES_ENGINE = saved;
  }
}

async function engineOf(options) {
  const fx = await FeatureExtractor.load(models.default, { device: 'cpu', threads: 1, ...options });
  const { engine, isa } = fx.info;
  fx.dispose();
  return { engine, isa };
}

describe('CPU engine switch', function () {
  it('this build has the oneDNN engine where libdnnl-dev is installed', function () {
    // where CMake looks first (cmake/onednn.cmake); elsewhere, oneDNN is the builder's choice
    if (!fs.existsSync('/usr/include/oneapi/dnnl/dnnl_version.h')) needOnednn(); // fails, naming libdnnl-dev
    assert.ok(onednn, 'libdnnl-dev is installed, yet this addon was built without the oneDNN engine: ' +
      "`npm run build` prints why ('film-features: no oneDNN engine: ...')");
  });

  it("'auto' runs oneDNN on the CPU and says which instruction set its kernels use", async function () {
    needOnednn();
    const { engine, isa } = await withEngineVariable('', () => engineOf({}));
    assert.equal(engine, 'onednn');
    assert.match(isa, /^(sse41|avx|avx2|avx2_vnni|avx512_\w+)$/);
  });

  it('runs the oneDNN that libtorch runs: one libdnnl in the process, the version python3-torch reports', async function () {
    needOnednn();
    const fx = await FeatureExtractor.load(models.default, { device: 'cpu', engine: 'onednn', threads: 1 });
    try {
      await fx.extract(randomTensor([1, 3, 32, 32], 7), { levels: 3 });
      // two copies would share oneDNN's C symbol names (libtorch's calls could land in ours)
      const mapped = new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\n')
        .map((line) => line.split(/\s+/)[5]).filter((file) => /\/lib(dnnl|mkldnn)\.so/.test(file || '')));
      assert.equal(mapped.size, 1, `oneDNN libraries mapped: ${[...mapped].join(', ')}`);
      // the same libtorch (Debian's), asked by its own Python binding which oneDNN it was built with
      const config = sh(python, ['-c', 'import torch; print(torch.__config__.show())']);
      const built = /(?:MKL-DNN|oneDNN) v(\d+\.\d+(?:\.\d+)?)/.exec(config);
      assert.ok(built, `no oneDNN version in torch.__config__.show():\n${config}`);
      assert.equal(fx.info.onednn.split('.').slice(0, 2).join('.'), built[1].split('.').slice(0, 2).join('.'));
    } finally {
      fx.dispose();
    }
  });

  // The core build has one engine: test/core checks that 'torchscript' says it needs libtorch.
  const itBoth = cpuEngines().includes('torchscript') ? it : () => {};
  itBoth('options.engine forces either engine; FILM_FEATURES_ENGINE sets the default; the option wins', async function () {
    needOnednn();
    assert.deepEqual(await engineOf({ engine: 'torchscript' }), { engine: 'torchscript', isa: undefined });
    assert.equal((await engineOf({ engine: 'onednn' })).engine, 'onednn');
    await withEngineVariable('torchscript', async () => {
      assert.equal((await engineOf({})).engine, 'torchscript');
      assert.equal((await engineOf({ engine: 'onednn' })).engine, 'onednn');
    });
    await withEngineVariable('onednn', async () => assert.equal((await engineOf({})).engine, 'onednn'));
  });

  itBoth('both engines give the same features on a batch of 3 with 5 levels', async function () {
    needOnednn();
    const image = randomTensor([3, 3, 45, 77], 31);
    const [a, b] = await Promise.all(['onednn', 'torchscript'].map(async (engine) => {
      const fx = await FeatureExtractor.load(models.default, { device: 'cpu', engine });
      try {
        return await fx.extract(image, { levels: 5 });
      } finally {
        fx.dispose();
      }
    }));
    a.forEach((level, i) => {
      assert.deepEqual(level.shape, b[i].shape);
      assert.ok(relativeError(level.data, b[i].data) <= 1e-5, `level ${i}`);
    });
  });

  it('rejects an unknown engine, naming the option or the variable', async () => {
    await assert.rejects(FeatureExtractor.load(models.default, { engine: 'fast' }),
      (err) => err instanceof RangeError && /options\.engine/.test(err.message) && /fast/.test(err.message));
    await assert.rejects(FeatureExtractor.load(models.default, { engine: 3 }),
      (err) => err instanceof TypeError && /options\.engine/.test(err.message));
    await withEngineVariable('fast', () => assert.rejects(FeatureExtractor.load(models.default),
      (err) => err instanceof RangeError && /FILM_FEATURES_ENGINE/.test(err.message)));
  });

  it("engine 'onednn' in a build without it rejects, saying how to get it", async function () {
    if (onednn) this.skip(); // only meaningful in a build without oneDNN; the other tests cover this one
    await assert.rejects(FeatureExtractor.load(models.default, { device: 'cpu', engine: 'onednn' }), /libdnnl-dev/);
  });

  describe("a file with FILM's weights whose forward is another network", function () {
    const file = path.join(dir, 'relu_extractor.pt');
    before(function () {
      needOnednn();
      if (fs.existsSync(file)) return;
      // export.py's extractor with ReLU where FILM has LeakyReLU(0.2): same names and shapes
      sh(python, ['-c', `
import sys, torch
sys.path.insert(0, 'models')
import export
torch.manual_seed(5)
m = export.FeatureExtractor(8, 2).eval()
for stage in m.extract_sublevels.convs:
    for block in stage:
        block[1] = torch.nn.ReLU()
torch.jit.script(m).save(${JSON.stringify(file)})`]);
    });

    const core = require('../dist/native').native().build === 'core';
    // The core reads the weights alone, and cannot tell: it says it ran FILM's network without the file's code.
    (core ? it : () => {})("the core build runs FILM's network on its weights, and says the file's code was not run", async () => {
      const fx = await FeatureExtractor.load(file, { device: 'cpu' });
      assert.equal(fx.info.engine, 'onednn');
      assert.equal(fx.info.codeRun, false);
      fx.dispose();
    });
    const itFull = core ? () => {} : it;
    itFull("'auto' runs it with TorchScript, and the features are its own", async () => {
      const fx = await FeatureExtractor.load(file, { device: 'cpu', engine: 'auto' });
      try {
        assert.equal(fx.info.engine, 'torchscript');
        const out = await fx.extract(randomTensor([1, 3, 16, 16], 3), { levels: 2 });
        // ReLU: no negative features, where LeakyReLU would give some
        assert.ok(out.every((level) => level.data.every((v) => v >= 0)));
      } finally {
        fx.dispose();
      }
    });

    itFull("'onednn' refuses it at load, naming the file", async () => {
      await assert.rejects(FeatureExtractor.load(file, { device: 'cpu', engine: 'onednn' }), (err) => {
        assert.equal(err.constructor, Error);
        assert.match(err.message, /engine 'onednn' does not reproduce this file's forward/);
        assert.ok(err.message.includes(file));
        return true;
      });
    });
  });
});
