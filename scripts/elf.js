'use strict';
// What a shared object links, as readelf and ldd (binutils, glibc) report it.
const { spawnSync } = require('node:child_process');

function tool(cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env });
  if (r.error) throw new Error(`${cmd} is needed (${r.error.code === 'ENOENT' ? 'not installed' : r.error.message})`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The RUNPATH (or old-style RPATH) entries of an ELF file; [] when it has none. */
function runpath(file) {
  const m = /\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[([^\]]*)\]/.exec(tool('readelf', ['-d', file]));
  return m ? m[1].split(':').filter(Boolean) : [];
}

/** DT_NEEDED sonames of an ELF file. */
function needed(file) {
  return [...tool('readelf', ['-d', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/**
 * Every shared library the loader maps for `file`, as { soname: path }; throws naming the
 * libraries that are not found.
 */
function closure(file) {
  const libs = {};
  const missing = [];
  for (const line of tool('ldd', [file]).split('\n')) {
    const found = /^\s*(\S+) => (\/\S+) \(0x[0-9a-f]+\)/.exec(line);
    if (found) libs[found[1]] = found[2];
    else if (/=> not found/.test(line)) missing.push(line.trim().split(' ')[0]);
  }
  if (missing.length > 0) throw new Error(`${file} needs libraries that are not found: ${missing.join(', ')}`);
  return libs;
}

module.exports = { runpath, needed, closure };
