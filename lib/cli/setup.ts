// `film-features setup`: builds the addon on this machine when no prebuilt binary loads (another
// libtorch, another platform), or when asked (--force, --libtorch, --bundle); where one loads, it
// says so and builds nothing. Where only the core prebuild loads (no libtorch: the oneDNN CPU
// engine), it builds the full addon if libtorch is there, and otherwise says how to get it.
// --bundle makes build/Release self-contained for Electron: by default with the core (oneDNN,
// libgomp: about 40 MiB; it runs on any x64 glibc 2.34+ machine, libtorch or not), from the shipped
// core prebuild, or built from source with --force; --full bundles the libtorch build instead. The user runs it, so it works under npm 12's
// script blocking. It never installs system packages unless asked (--install-deps).
// This file must not import the rest of the package: it runs when the addon does not load.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import type { Command } from 'commander';

import { newProgram, runProgram } from './program';

interface AddonBuild {
  root: string;
  run(cmd: string, args: string[], options?: { env?: NodeJS.ProcessEnv }): boolean;
  has(cmd: string): boolean;
  locateTorch(env: NodeJS.ProcessEnv): string | null;
  missingBuildTools(env: NodeJS.ProcessEnv): string[];
  aptUsable(): boolean;
  aptInstall(packages: string[]): boolean;
  build(options: { env: NodeJS.ProcessEnv }): boolean;
}
interface Bundler {
  bundle(addon: string, options: { log: (message: string) => void }): { libraries: string[]; bytes: number };
}
interface RuntimeBundler {
  bundleRuntime(addon: string, options: { libdir?: string; log?: (message: string) => void }): {
    libraries: { soname: string; bytes: number }[];
    bytes: number;
  };
  CORE_NAME: string;
  CORE_LIBS: string;
}
// Plain JavaScript shared with the install step, which runs before TypeScript is compiled.
const scripts = path.join(__dirname, '..', '..', 'scripts');
const addonBuild = require(path.join(scripts, 'addon-build.js')) as AddonBuild;

interface SetupOptions {
  libtorch?: string;
  installDeps?: boolean;
  bundle?: boolean;
  full?: boolean;
  force?: boolean;
}

const say = (message: string): void => console.error(`film-features setup: ${message}`);

// Run in a fresh process, so the binary just built is the one the loader picks and loads.
const CHECK = `
const root = process.argv[1];
const { FeatureExtractor } = require(root);
(async () => {
  const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
  const data = new Float32Array(3 * 64 * 64).map((_, i) => (i % 97) / 97);
  const out = await fx.extract({ data, shape: [1, 3, 64, 64] }, { levels: 7 });
  const finite = out.every((l) => l.data.every(Number.isFinite));
  const build = require(fx.info.build.file).build === 'core' ? 'core' : 'full';
  console.log(JSON.stringify({ binary: fx.info.build.file, kind: fx.info.build.kind, build, torch: fx.info.build.libtorch,
    shadows: fx.info.build.shadows, shapes: out.map((l) => l.shape), finite, weights: fx.info.weights }));
  fx.dispose();
})().catch((e) => { console.error(e.message); process.exit(1); });`;

interface Check {
  binary: string;
  kind: string;
  /** 'core': the libtorch-free build (oneDNN's CPU engine only) */
  build: 'core' | 'full';
  torch: string;
  shadows: string[];
  shapes: number[][];
  finite: boolean;
  weights: string;
}

/** Loads the package in a fresh process and extracts: what loaded, or the error. */
function check(env: NodeJS.ProcessEnv): { ok: true; check: Check; out: string } | { ok: false; error: string } {
  const r = spawnSync(process.execPath, ['-e', CHECK, addonBuild.root], { encoding: 'utf8', env });
  if (r.status !== 0) return { ok: false, error: (r.stderr || r.stdout).trim() };
  return { ok: true, check: JSON.parse(r.stdout) as Check, out: r.stdout.trim() };
}

const works = (c: Check): boolean => c.finite && c.shapes.length === 7;

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Files under dir (recursively) and their bytes. */
function folderBytes(dir: string): number {
  const fs = require('node:fs') as typeof import('node:fs');
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? folderBytes(p) : fs.lstatSync(p).size;
  }
  return n;
}

/**
 * The core bundle in build/Release: film_features.node (the core) and its runtime in
 * film-features.core.libs/ (RUNPATH $ORIGIN/film-features.core.libs), so that the loader takes it
 * first (a local build) on every machine. From the shipped core prebuild as it is (already
 * self-contained), or built from source (--force, or no core prebuild here: cmake, g++ and
 * libdnnl-dev; no libtorch). Whatever build/Release held is replaced. Returns an exit code.
 */
function bundleCore(opts: SetupOptions, env: NodeJS.ProcessEnv): number {
  const fs = require('node:fs') as typeof import('node:fs');
  const os = require('node:os') as typeof import('node:os');
  const { bundleRuntime, CORE_NAME, CORE_LIBS } = require(path.join(scripts, 'bundle-runtime.js')) as RuntimeBundler;
  const release = path.join(addonBuild.root, 'build', 'Release');
  const prebuild = path.join(addonBuild.root, 'prebuilds', `${os.platform()}-${os.arch()}`, CORE_NAME);
  const staging = path.join(addonBuild.root, 'build', `Release.staging-${process.pid}`);
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  try {
    const addon = path.join(staging, 'film_features.node');
    if (!opts.force && fs.existsSync(prebuild) && fs.existsSync(path.join(path.dirname(prebuild), CORE_LIBS))) {
      say(`bundling the shipped core prebuild ${prebuild}`);
      fs.copyFileSync(prebuild, addon);
      fs.cpSync(path.join(path.dirname(prebuild), CORE_LIBS), path.join(staging, CORE_LIBS), { recursive: true });
    } else {
      const missing = ['cmake', 'c++', 'patchelf'].filter((t) => !addonBuild.has(t)).map((t) => (t === 'c++' ? 'g++' : t));
      if (!fs.existsSync('/usr/include/dnnl.hpp') && !fs.existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) missing.push('libdnnl-dev');
      if (missing.length > 0) {
        if (!opts.installDeps || !addonBuild.aptUsable() || !addonBuild.aptInstall(missing)) {
          say(`building the core needs: ${missing.join(', ')} (Debian/Ubuntu: sudo apt-get install ${missing.join(' ')}; ` +
            'or --install-deps as root)');
          return 1;
        }
      }
      const out = path.join(addonBuild.root, 'build-core');
      say(`building the core (no libtorch: oneDNN's CPU engine) in ${out}`);
      const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
      if (!addonBuild.run(process.execPath, [cmakeJs, 'build', '--directory', addonBuild.root, '--out', out,
        '--parallel', String(os.availableParallelism()), '--CDFILM_CORE=ON'], { env })) {
        say('the core build failed (see above)');
        return 1;
      }
      fs.copyFileSync(path.join(out, 'Release', 'film_features.node'), addon);
      const r = bundleRuntime(addon, { libdir: CORE_LIBS, log: say });
      say(`bundled ${r.libraries.map((l) => `${l.soname} (${mib(l.bytes)})`).join(', ')}`);
    }
    // in place of build/Release, whatever it held (a full build, an earlier bundle)
    const old = `${release}.old-${process.pid}`;
    if (fs.existsSync(release)) fs.renameSync(release, old);
    fs.renameSync(staging, release);
    fs.rmSync(old, { recursive: true, force: true });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  say(`the core bundle: ${mib(folderBytes(release))} in ${release}; it is loaded first on every machine, so an app ` +
    `may leave out ${path.join(addonBuild.root, 'prebuilds')} (electron-builder: "!node_modules/film-features/prebuilds/**")`);
  return 0;
}

/** The last check of a bundle or a build: it loads from `addon` and extracts. */
function finalCheck(env: NodeJS.ProcessEnv, addon: string): number {
  say('checking that it loads and extracts...');
  const built = check(env);
  if (!built.ok) {
    say(`the build does not work: ${built.error}`);
    return 1;
  }
  const c = built.check;
  if (c.binary !== addon || !works(c)) {
    say(`the check failed: ${built.out}`);
    return 1;
  }
  const what = c.build === 'core' ? 'the core addon (no libtorch)' : `libtorch ${c.torch}`;
  console.log(`film-features is ready: ${c.binary} (${what}) loads and extracts ` +
    `7 levels from 64x64 (level 0 ${JSON.stringify(c.shapes[0])}); model weights: ${c.weights}`);
  if (c.shadows.length > 0) {
    say(`this local build is used in place of the prebuild ${c.shadows.map((f) => path.basename(f)).join(', ')}, ` +
      `which loads here too; delete ${path.join(addonBuild.root, 'build')} to use the prebuild again`);
  }
  return 0;
}

async function setup(opts: SetupOptions): Promise<number> {
  const env = { ...process.env };
  delete env.FILM_FEATURES_ADDON; // check the build the loader finds, not an override
  // A binary that loads needs no build: said, unless a build is asked for (--force), or needs one
  // (--libtorch: another libtorch; --bundle: the libraries copied next to a build).
  const bundleFull = opts.bundle && (opts.full || opts.libtorch !== undefined);
  if (opts.bundle && !bundleFull) {
    // Electron and Docker images run where libtorch may be absent: the core, the same everywhere.
    const code = bundleCore(opts, env);
    return code !== 0 ? code : finalCheck(env, path.join(addonBuild.root, 'build', 'Release', 'film_features.node'));
  }
  let onlyCore = false;
  if (!opts.force && !opts.libtorch && !opts.bundle) {
    const now = check(env);
    onlyCore = now.ok && works(now.check) && now.check.build === 'core';
    if (now.ok && works(now.check) && !onlyCore) {
      const c = now.check;
      const what = c.kind === 'prebuild' ? 'the prebuilt addon' : 'the addon';
      console.log(`film-features is ready: ${what} ${c.binary} (libtorch ${c.torch}) already loads and extracts 7 levels ` +
        `from 64x64; nothing to build. \`npx film-features setup --force\` builds it here anyway` +
        (c.kind === 'prebuild' ? ', and that build is then used in place of the prebuild' : '') + '.');
      return 0;
    }
    if (onlyCore) {
      say(`the core addon ${now.ok ? now.check.binary : ''} loads and extracts (oneDNN's CPU engine, no libtorch); ` +
        'no full addon (libtorch: CUDA, the TorchScript engine, FILM files) loads here; building one');
    } else say('no addon loads here yet; building one');
  }
  if (opts.libtorch) env.LIBTORCH = path.resolve(opts.libtorch);
  let missing: string[];
  try {
    missing = addonBuild.missingBuildTools(env);
  } catch (err) {
    say((err as Error).message); // a --libtorch (or LIBTORCH) that holds no libtorch
    return 1;
  }
  if (opts.bundle && !addonBuild.has('patchelf')) missing.push('patchelf');
  if (missing.length > 0) {
    if (onlyCore && !opts.installDeps) {
      console.log(`film-features is ready with the core addon (the CPU, no libtorch). For the full addon (CUDA, the TorchScript ` +
        `engine, FILM files) install ${missing.join(', ')} (Debian/Ubuntu: sudo apt-get install ${missing.join(' ')}) and run ` +
        '`npx film-features setup` again, or `npx film-features setup --install-deps` as root.');
      return 0;
    }
    if (!opts.installDeps) {
      say(`missing: ${missing.join(', ')}. Install them (Debian/Ubuntu: sudo apt-get install ${missing.join(' ')}),`);
      say('or run `npx film-features setup --install-deps` as root to let setup install them,');
      say('or give an unpacked libtorch with --libtorch PATH.');
      return 1;
    }
    if (!addonBuild.aptUsable()) {
      say(`--install-deps needs apt-get and root; run it with sudo, or: sudo apt-get install ${missing.join(' ')}`);
      return 1;
    }
    if (!addonBuild.aptInstall(missing)) {
      say(`apt-get could not install ${missing.join(' ')}`);
      return 1;
    }
  }
  const torch = addonBuild.locateTorch(env);
  if (!torch) {
    say('libtorch is still not found; give it with --libtorch PATH');
    return 1;
  }
  say(`libtorch: ${torch}`);
  say(`building the addon in ${path.join(addonBuild.root, 'build')}`);
  if (!addonBuild.build({ env })) {
    say('the build failed (see above)');
    return 1;
  }
  const addon = path.join(addonBuild.root, 'build', 'Release', 'film_features.node');
  if (opts.bundle) {
    const { bundle } = require(path.join(scripts, 'bundle.js')) as Bundler;
    try {
      const { libraries, bytes } = bundle(addon, { log: say });
      say(`bundled ${libraries.length} libraries next to the addon: ${(bytes / 2 ** 20).toFixed(0)} MiB in ${path.dirname(addon)}`);
    } catch (err) {
      say((err as Error).message);
      return 1;
    }
  }
  return finalCheck(env, addon);
}

/** The `setup` command; onExit receives its exit code. */
export function setupCommand(onExit: (code: number) => void): Command {
  return newProgram('setup')
    .description('Builds the native addon for this machine (when no prebuilt binary loads) and checks it')
    .option('--libtorch <path>', 'an unpacked libtorch (default: LIBTORCH, Torch_DIR, a Python torch, then the system\'s)')
    .option('--install-deps', 'apt-get install what the build lacks (cmake, g++, libtorch-dev, patchelf); needs root')
    .option('--bundle', 'make build/Release self-contained for Electron or Docker: the core addon (no libtorch, about 40 MiB) ' +
      'with its oneDNN and libgomp (RUNPATH $ORIGIN); from the shipped core prebuild, or built with --force')
    .option('--full', 'with --bundle: bundle the libtorch build and every library it links instead (Debian: about 475 MiB)')
    .option('--force', 'build even where an addon (the prebuilt one) already loads; the build is then used in its place')
    .addHelpText('after', '\nWithout --force, --libtorch or --bundle, an addon that already loads is checked, not rebuilt; where only the core ' +
      '(no libtorch) loads, the full addon is built if libtorch can be found.\n' +
      'Exit status: 0 when the addon loads and extracts (built, or already there); 1 otherwise.')
    .action(async (opts: SetupOptions) => onExit(await setup(opts)));
}

/** `film-features setup ...` on its own, without loading the addon (bin/film-features.js). */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  return runProgram(newProgram('film-features').addCommand(setupCommand((c) => { code = c; })), argv, () => code);
}
