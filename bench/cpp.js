'use strict';
// The bare C++ programs the benches compare against (bench/cpp): forward_loop (the oneDNN engine or
// TorchScript without Node) and fma_peak (the machine's fp32 FMA peak), built once into
// bench/.cache/cpp-build with cmake, which decides what is stale.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cppBuild = path.join(__dirname, '.cache', 'cpp-build');
const cppBinary = path.join(cppBuild, 'forward_loop');
const fmaBinary = path.join(cppBuild, 'fma_peak');

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const olderThan = (file, source) => !fs.existsSync(file) || fs.statSync(file).mtimeMs < fs.statSync(source).mtimeMs;

/** forward_loop and fma_peak (or only `targets`), built where missing or older than their sources. */
function ensureCpp(targets = ['forward_loop', 'fma_peak']) {
  const sources = ['forward_loop.cc', 'fma_peak.cc', 'CMakeLists.txt', '../../native/onednn/engine.cc', '../../native/onednn/engine.h', '../../native/onednn/compat.h', '../../native/onednn/winograd.cc', '../../native/onednn/winograd.h', '../../cmake/onednn.cmake']
    .map((f) => path.join(__dirname, 'cpp', f));
  const built = targets.map((t) => path.join(cppBuild, t)).every((b) => fs.existsSync(b) && !sources.some((s) => olderThan(b, s)));
  if (built) return;
  console.error(`building bench/cpp (${targets.join(', ')}) ...`);
  sh('cmake', ['-S', path.join(__dirname, 'cpp'), '-B', cppBuild, '-DCMAKE_BUILD_TYPE=Release']);
  sh('cmake', ['--build', cppBuild, '--config', 'Release', '--target', ...targets]);
}

const fmaFamily = (isa) => (/^avx512/.test(isa) ? 'avx512' : 'avx2');

/**
 * fp32 FMA peak for oneDNN's ISA family (bench/cpp/fma_peak: best of 5 short rounds): { gflops } of
 * all threads in wall time, and { perCpuSecond } GFLOP per second of CPU time a thread got.
 */
function fmaPeak(isa, threads) {
  const out = JSON.parse(sh(fmaBinary, [fmaFamily(isa), String(threads)]).trim());
  return { gflops: out.gflops, perCpuSecond: out.gflops_per_cpu_second };
}

module.exports = { sh, olderThan, ensureCpp, cppBinary, fmaPeak, fmaFamily };
