#!/usr/bin/env node
'use strict';
// The oldest system the core prebuild (prebuilds/linux-x64/film-features.core.glibc.node and the
// libraries bundled with it) runs on: every ELF file may require at most the symbol versions of
// glibc 2.34 and of gcc 11's runtime (libstdc++ GLIBCXX_3.4.29 and CXXABI_1.3.13, libgcc_s GCC_7.0.0:
// gcc 12's libgcc_s added GCC_12.0.0), and may link nothing but those system libraries and the
// files checked with it (the bundle is self-contained).
//   node scripts/check-symbols.js DIR|FILE...   exit 0: all pass; 1: prints each offending symbol
//   --max GLIBC_2.36 (repeatable)                raises or lowers one limit
// Reads the files with readelf (binutils): .gnu.version_r for the versions each needs, the dynamic
// symbol table for which symbols need them.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

/** The newest symbol version allowed per versioned system library (the prefix of its version names). */
const LIMITS = { GLIBC: '2.34', GLIBCXX: '3.4.29', CXXABI: '1.3.13', GCC: '7.0.0' };
/** Libraries the system provides (glibc, the C++ runtime): the only NEEDED not bundled. */
const SYSTEM = /^(ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1)$/;

function readelf(args, file) {
  const r = spawnSync('readelf', ['-W', ...args, file], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
  if (r.error) throw new Error(`readelf is needed (binutils): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`readelf ${args.join(' ')} ${file} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Compares dotted versions: <0, 0, >0. */
function compare(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function isElf(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    return fs.readSync(fd, b, 0, 4, 0) === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    fs.closeSync(fd);
  }
}

/** The ELF files under each argument (a folder: recursively, symlinks skipped). */
function elfFiles(args) {
  const out = [];
  const walk = (p) => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) for (const f of fs.readdirSync(p).sort()) walk(path.join(p, f));
    else if (st.isFile() && isElf(p)) out.push(p);
  };
  for (const a of args) {
    if (fs.statSync(a).isFile()) out.push(a); // named explicitly: checked even if a symlink
    else walk(a);
  }
  return out;
}

/** What an ELF file needs: { soname, needed: [soname], versions: [{ file, name }], symbols: [{ name, version }] }. */
function inspect(file) {
  const dyn = readelf(['-d'], file);
  const soname = /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(dyn)?.[1] ?? null;
  const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const versions = [];
  const vr = readelf(['-V'], file).split(/\n(?=Version (?:needs|definition|symbols) section)/)
    .find((s) => s.startsWith("Version needs section '.gnu.version_r'")) ?? '';
  let from = null;
  for (const line of vr.split('\n')) {
    const f = /File: (\S+)/.exec(line);
    if (f) from = f[1];
    const n = /Name: (\S+)\s+Flags/.exec(line);
    if (n) versions.push({ file: from, name: n[1] });
  }
  const symbols = [];
  for (const line of readelf(['--dyn-syms'], file).split('\n')) {
    // Num: Value Size Type Bind Vis Ndx Name; undefined symbols are what the file needs
    const cols = line.trim().split(/\s+/);
    if (cols.length < 8 || cols[6] !== 'UND') continue;
    const m = /^([^@\s]+)@+([^\s(]+)/.exec(cols[7]);
    if (m) symbols.push({ name: m[1], version: m[2] });
  }
  return { soname, needed, versions, symbols };
}

/** A version name over its limit: its limit, else null ('GLIBCXX_3.4.30' -> '3.4.29'). */
function overLimit(name, limits) {
  const m = /^([A-Z]+)_(\d+(?:\.\d+)*)$/.exec(name);
  if (!m || !(m[1] in limits)) return null;
  return compare(m[2], limits[m[1]]) > 0 ? limits[m[1]] : null;
}

/**
 * Checks the files: returns [{ file, soname, problems: [string] }] (problems empty when it passes).
 * A NEEDED library must be a system one (SYSTEM) or the soname of one of the files.
 */
function check(files, limits = LIMITS) {
  const infos = files.map((file) => ({ file, ...inspect(file) }));
  const bundled = new Set(infos.map((i) => i.soname).filter(Boolean));
  return infos.map((info) => {
    const problems = [];
    for (const v of info.versions) {
      const limit = overLimit(v.name, limits);
      if (!limit) continue;
      const syms = info.symbols.filter((s) => s.version === v.name).map((s) => s.name);
      problems.push(`needs ${v.name} from ${v.file} (newest allowed: ${v.name.split('_')[0]}_${limit})` +
        (syms.length > 0 ? `: ${syms.join(', ')}` : ''));
    }
    for (const lib of info.needed) {
      if (!SYSTEM.test(lib) && !bundled.has(lib)) problems.push(`links ${lib}, which is neither a system library nor bundled`);
    }
    return { file: info.file, soname: info.soname, problems };
  });
}

/** The newest version each file needs per limited library, e.g. { GLIBC: '2.34', GLIBCXX: '3.4.29' }. */
function newest(file, limits = LIMITS) {
  const out = {};
  for (const { name } of inspect(file).versions) {
    const m = /^([A-Z]+)_(\d+(?:\.\d+)*)$/.exec(name);
    if (m && m[1] in limits && (!out[m[1]] || compare(m[2], out[m[1]]) > 0)) out[m[1]] = m[2];
  }
  return out;
}

module.exports = { check, inspect, newest, elfFiles, LIMITS, SYSTEM, compare };

if (require.main === module) {
  const args = process.argv.slice(2);
  const limits = { ...LIMITS };
  const targets = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--max') {
      const m = /^([A-Z]+)_(\d+(?:\.\d+)*)$/.exec(args[++i] ?? '');
      if (!m) {
        console.error('check-symbols: --max takes a version name such as GLIBC_2.36');
        process.exit(2);
      }
      limits[m[1]] = m[2];
    } else targets.push(args[i]);
  }
  if (targets.length === 0) {
    console.error('usage: node scripts/check-symbols.js [--max GLIBC_2.34]... DIR|FILE...');
    process.exit(2);
  }
  try {
    const files = elfFiles(targets);
    if (files.length === 0) throw new Error(`no ELF file in ${targets.join(' ')}`);
    let failed = 0;
    for (const r of check(files, limits)) {
      const top = Object.entries(newest(r.file, limits)).map(([k, v]) => `${k}_${v}`).join(' ');
      if (r.problems.length === 0) {
        console.log(`ok   ${r.file} (${top || 'no versioned system symbols'})`);
      } else {
        failed++;
        console.log(`FAIL ${r.file}`);
        for (const p of r.problems) console.log(`     ${p}`);
      }
    }
    const want = Object.entries(limits).map(([k, v]) => `${k}_${v}`).join(', ');
    console.log(failed === 0 ? `all ${files.length} files need at most ${want}`
      : `${failed} of ${files.length} files need more than ${want}`);
    process.exitCode = failed === 0 ? 0 : 1;
  } catch (err) {
    console.error(`check-symbols: ${err.message}`);
    process.exitCode = 2;
  }
}
