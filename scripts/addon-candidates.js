'use strict';
// The addon binaries a package may load, best first: a local build (build/Release), then the
// prebuilds for this platform, one per libtorch they link (prebuilds/linux-x64/
// film-features.torch2_6.glibc.node links Debian 13's libtorch 2.6, ...torch1_13... Debian 12's
// 1.13), newest libtorch first, then the core prebuild (film-features.core.glibc.node: no libtorch,
// its oneDNN and libgomp bundled in film-features.core.libs/, scripts/bundle-runtime.js) last, so
// that require('film-features') loads where no libtorch does. The loader (lib/native.ts) and the
// install step (scripts/install.js) take the first that loads. Plain JavaScript: the install step
// runs before TypeScript is compiled.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** 'torch2_6' in a prebuild's name: the libtorch it links, as [major, minor]; null if untagged. */
function torchTag(file) {
  const m = /\.torch(\d+)_(\d+)\./.exec(file);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** True for the core prebuild's name (film-features.core.glibc.node): the libtorch-free build. */
function isCore(file) {
  return /\.core\.(?:(?:glibc|musl)\.)?node$/.test(path.basename(file));
}

/**
 * [{ file, kind: 'build' | 'prebuild', torch: [major, minor] | null, core: boolean }], in the order
 * to try them: build/Release (unless PREBUILDS_ONLY), the full prebuilds (newest libtorch first,
 * untagged ones after the tagged), the core prebuild.
 */
function candidates(root) {
  const out = [];
  const release = path.join(root, 'build', 'Release', 'film_features.node');
  if (!process.env.PREBUILDS_ONLY && fs.existsSync(release)) out.push({ file: release, kind: 'build', torch: null, core: false });
  const libc = fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  const dir = path.join(root, 'prebuilds', `${os.platform()}-${os.arch()}`);
  let names = [];
  try {
    names = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
  } catch {
    // no prebuilds for this platform
  }
  const prebuilds = names
    .filter((f) => !/\.(glibc|musl)\./.test(f) || f.includes(`.${libc}.`))
    .map((f) => ({ file: path.join(dir, f), kind: 'prebuild', torch: torchTag(f), core: isCore(f) }))
    .sort((a, b) => (Number(a.core) - Number(b.core)) ||
      ((b.torch ?? [0, 0])[0] - (a.torch ?? [0, 0])[0]) || ((b.torch ?? [0, 0])[1] - (a.torch ?? [0, 0])[1]) ||
      a.file.localeCompare(b.file));
  return out.concat(prebuilds);
}

/**
 * Requires the first candidate that loads; returns { binding, file, kind, core, skipped }, skipped
 * naming each candidate tried before it and why it did not load ('prebuilds/linux-x64/...: libtorch_cpu.so.1.13:
 * cannot open shared object file'). Throws an Error listing why each failed (or that there is none).
 */
function loadFirst(root, requireFn = require) {
  const failures = [];
  for (const c of candidates(root)) {
    try {
      return { binding: requireFn(c.file), file: c.file, kind: c.kind, core: c.core, skipped: failures.slice() };
    } catch (err) {
      failures.push(`${path.relative(root, c.file)}: ${String(err.message).split('\n')[0]}`);
    }
  }
  if (failures.length === 0) throw new Error(`No native build was found in ${root} (build/Release or prebuilds/${os.platform()}-${os.arch()})`);
  throw new Error(failures.join('; '));
}

module.exports = { candidates, loadFirst, torchTag, isCore };
