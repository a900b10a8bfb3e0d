#!/usr/bin/env node
'use strict';
// npm run check:cuda: compiles every native translation unit as the CUDA build would (FILM_WITH_CUDA
// defined, CUDA headers on the path), compile only, so that CUDA-only code is checked on machines
// whose libtorch is CPU-only and that have no GPU. Needs the CUDA toolkit's headers (nvcc on PATH,
// or CUDA_HOME / CUDA_PATH) and libtorch's headers, which carry c10/cuda and ATen/cuda.
//
// The include paths, defines and flags are CMake's own: cmake-js configures the project into a
// scratch folder with compile_commands.json, and each file is compiled with its command plus:
//   -DFILM_WITH_CUDA        what CMakeLists.txt defines for a CUDA libtorch
//   -DUSE_C10D_NCCL         what a CUDA libtorch's torch_cuda target adds to its users
//   -isystem <cuda>         the toolkit's headers (cuda_runtime_api.h, ...)
//   -isystem <scratch>      c10/cuda/impl/cuda_cmake_macros.h, generated when libtorch is built with
//                           CUDA and so missing from a CPU-only install (written only where missing)
//   -fsyntax-only           full parsing and template instantiation, no code generation
// Files: native/**/*.cc and *.cpp (so new files are checked whether or not CMake lists them yet),
// plus any other project file in compile_commands.json.
//   --keep   leave the scratch folder (build/check-cuda) in place and print its path
// Then the same inside a root of the other Debian release (.ci/debian-root.sh; Debian 13: libtorch
// 2.6's headers, as pytorch.org's CUDA libtorch is 2.x) with this toolkit mounted, where a checkout
// can make one (root, debootstrap). --here-only skips that.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const scratch = process.env.FILM_CHECK_CUDA_SCRATCH || path.join(root, 'build', 'check-cuda');

function fail(message) {
  console.error(`check:cuda: ${message}`);
  process.exit(1);
}

// The toolkit's include folders, as nvcc itself reports them (nvcc may be a wrapper script).
function cudaIncludes() {
  const dirs = [];
  const probe = path.join(os.tmpdir(), `film-check-cuda-${process.pid}.cu`);
  fs.writeFileSync(probe, '');
  const r = spawnSync('nvcc', ['-dryrun', '-c', probe, '-o', `${probe}.o`], { encoding: 'utf8' });
  fs.rmSync(probe, { force: true });
  if (r.status === 0) {
    const text = `${r.stdout}${r.stderr}`;
    for (const line of text.split('\n')) {
      const m = /^#\$ (?:SYSTEM_)?INCLUDES=(.*)$/.exec(line.trim());
      if (!m) continue;
      for (const token of m[1].match(/"[^"]*"|\S+/g) || []) {
        const value = token.replace(/^"|"$/g, '').replace(/^-I/, '').trim();
        if (value && value !== '-isystem') dirs.push(path.normalize(value));
      }
    }
  }
  for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda']) {
    if (home) dirs.push(path.join(home, 'include'));
  }
  const found = [...new Set(dirs.filter((d) => fs.existsSync(d)).map((d) => fs.realpathSync(d)))];
  if (!found.some((d) => fs.existsSync(path.join(d, 'cuda_runtime_api.h')))) {
    fail('no CUDA toolkit headers found (cuda_runtime_api.h). Put nvcc on PATH or set CUDA_HOME ' +
      'to the toolkit (e.g. /usr/local/cuda).');
  }
  return found;
}

function configure() {
  fs.rmSync(scratch, { recursive: true, force: true });
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const r = spawnSync(process.execPath, [cmakeJs, 'configure', '--directory', root, '--out', scratch,
    '--CDCMAKE_EXPORT_COMPILE_COMMANDS=ON'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) fail(`cmake-js configure failed:\n${r.stdout}${r.stderr}`);
  const file = path.join(scratch, 'compile_commands.json');
  if (!fs.existsSync(file)) fail(`cmake wrote no ${file}`);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// The command's compiler and flags, without its output and input: [compiler, ...flags].
function flagsOf(entry) {
  const args = entry.arguments || entry.command.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g).map((a) => a.replace(/^(["'])(.*)\1$/, '$2'));
  const out = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-o' || args[i] === '-c') {
      if (args[i] === '-o') i++;
      continue;
    }
    if (path.resolve(entry.directory, args[i]) === path.resolve(entry.directory, entry.file)) continue;
    out.push(args[i]);
  }
  return out;
}

function sources(entries) {
  const files = new Set();
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cc|cpp)$/.test(e.name)) files.add(p);
    }
  };
  walk(path.join(root, 'native'));
  for (const e of entries) {
    const file = path.resolve(e.directory, e.file);
    if (file.startsWith(root + path.sep) && !file.includes(`${path.sep}node_modules${path.sep}`)) files.add(file);
  }
  return [...files].sort();
}

function macrosHeader(includeFlags) {
  const rel = path.join('c10', 'cuda', 'impl', 'cuda_cmake_macros.h');
  const torchDirs = ['/usr/include', ...includeFlags];
  if (torchDirs.some((d) => fs.existsSync(path.join(d, rel)))) return [];
  const dir = path.join(scratch, 'generated');
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  // What c10/cuda/impl/cuda_cmake_macros.h.in becomes for a shared-library build.
  fs.writeFileSync(path.join(dir, rel), '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n');
  return [dir];
}

function compile(argv) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: root });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('error', (err) => resolve({ ok: false, output: String(err) }));
    child.on('close', (code) => resolve({ ok: code === 0, output }));
  });
}

async function main() {
  const started = Date.now();
  const cuda = cudaIncludes();
  const entries = configure();
  if (entries.length === 0) fail('compile_commands.json lists no files');
  const byFile = new Map(entries.map((e) => [path.resolve(e.directory, e.file), e]));
  // Files CMake does not list yet get the flags of the addon's first file (one target, one set of flags).
  const fallback = entries.find((e) => path.resolve(e.directory, e.file).startsWith(path.join(root, 'native'))) || entries[0];
  const includeDirs = flagsOf(fallback).flatMap((a, i, all) =>
    a.startsWith('-I') && a.length > 2 ? [a.slice(2)] : (a === '-I' || a === '-isystem') ? [all[i + 1]] : []);
  const extra = ['-DFILM_WITH_CUDA', '-DUSE_C10D_NCCL',
    ...[...macrosHeader(includeDirs), ...cuda].flatMap((d) => ['-isystem', d]), '-fsyntax-only'];
  const files = sources(entries);
  console.log(`check:cuda: ${files.length} files with FILM_WITH_CUDA; CUDA headers: ${cuda.join(', ')}`);

  const jobs = files.map((file) => {
    const entry = byFile.get(file) || fallback;
    return { file, argv: [...flagsOf(entry), ...extra, file] };
  });
  const failed = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      const t = Date.now();
      const r = await compile(job.argv);
      const name = path.relative(root, job.file);
      console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
      if (r.output.trim()) process.stdout.write(r.output);
      if (!r.ok) failed.push(name);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(os.availableParallelism(), jobs.length)) }, worker));
  if (!process.argv.includes('--keep')) fs.rmSync(scratch, { recursive: true, force: true });
  const took = ((Date.now() - started) / 1000).toFixed(0);
  if (failed.length > 0) fail(`${failed.length} of ${files.length} files do not compile with FILM_WITH_CUDA: ${failed.join(', ')} (${took} s)`);
  console.log(`check:cuda: all ${files.length} files compile with FILM_WITH_CUDA (${took} s)`);
  if (!process.argv.includes('--here-only')) inOtherRelease(cuda);
}

// The other Debian release's libtorch headers (1.13 <-> 2.6), in its root, with this CUDA toolkit.
function inOtherRelease(cuda) {
  const script = path.join(root, '.ci', 'debian-root.sh');
  const codename = /^VERSION_CODENAME=(\w+)/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1];
  const other = { bookworm: 'trixie', trixie: 'bookworm' }[codename];
  if (!other || !fs.existsSync(script) || process.getuid?.() !== 0) {
    console.log(`check:cuda: not checked against the other Debian release's libtorch (needs a checkout, root, Debian 12 or 13)`);
    return;
  }
  if (spawnSync(script, ['make', other], { stdio: ['ignore', 'ignore', 'inherit'] }).status !== 0) fail(`could not make the ${other} root`);
  // the toolkit: the folder above include/ (cuda_runtime_api.h), mounted at the same path
  const include = cuda.find((d) => fs.existsSync(path.join(d, 'cuda_runtime_api.h')));
  const toolkit = fs.realpathSync(path.join(include, include.includes('/targets/') ? '../../..' : '..'));
  const env = { ...process.env, FILM_ROOT_SRC: root, FILM_ROOT_BIND: toolkit, CUDA_HOME: toolkit, FILM_CHECK_CUDA_SCRATCH: '/build/check-cuda' };
  for (const v of ['CMAKE_CXX_COMPILER_LAUNCHER', 'LIBTORCH', 'Torch_DIR']) delete env[v];
  console.log(`check:cuda: again in the ${other} root (${toolkit} mounted)`);
  const r = spawnSync(script, ['exec', other, 'node', '/src/scripts/check-cuda.js', '--here-only'], { stdio: 'inherit', env });
  if (r.status !== 0) fail(`the CUDA code does not compile against ${other}'s libtorch`);
}

main().catch((err) => fail(err.stack || String(err)));
