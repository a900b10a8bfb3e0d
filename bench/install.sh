#!/usr/bin/env bash
# Install figures: tarball size, `npm install` of the tarball into a blank project with and without
# its prebuild (without: the install step compiles), and the size of a `setup --bundle` bundle.
# Run from the checkout after `npm install`: bash bench/install.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, ISA: $(grep -o -w 'avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "Node $(node --version), npm $(npm --version), load $(cut -d' ' -f1-3 /proc/loadavg)"
(cd "$root" && npm pack --pack-destination "$work" --loglevel=error >/dev/null 2>&1)  # prepack builds the prebuild
mv film-features-*.tgz with-prebuild.tgz
mkdir x && tar xzf with-prebuild.tgz -C x && rm -rf x/package/prebuilds && tar czf without-prebuild.tgz -C x package
echo "tarball: $(du -k with-prebuild.tgz | cut -f1) KiB ($(tar tzf with-prebuild.tgz | wc -l) files); without prebuilds/: $(du -k without-prebuild.tgz | cut -f1) KiB"

for t in with-prebuild without-prebuild; do
  mkdir "app-$t" && cd "app-$t"
  echo '{ "name": "app", "version": "1.0.0", "private": true }' > package.json
  npm install --no-audit --no-fund --prefer-offline --loglevel=error ../with-prebuild.tgz >/dev/null 2>&1  # warm npm's cache
  rm -rf node_modules package-lock.json
  start=$(date +%s%N)
  npm install --no-audit --no-fund --prefer-offline --loglevel=error "../$t.tgz" >/dev/null 2>&1
  echo "npm install, $t: $(ms "$start") ms (compiled: $([ -d node_modules/film-features/build ] && echo yes || echo no))"
  cd ..
done

cd app-without-prebuild
start=$(date +%s%N)
npx --no-install film-features setup --bundle >/dev/null 2>setup.log
echo "setup --bundle (build up to date): $(ms "$start") ms; $(grep -o 'bundled [0-9]* libraries.*MiB' setup.log); build/Release: $(du -sm node_modules/film-features/build/Release | cut -f1) MiB"
