#!/usr/bin/env bash
# A Debian root (chroot) of another release, made with debootstrap from Debian's packages, with what
# film-features needs to build, test and package. Cached outside the clone, keyed by a hash of the
# release, the mirror and the package list, so CI makes it once and later runs reuse it.
#
#   .ci/debian-root.sh make SUITE          make (or reuse) the root; prints its path
#   .ci/debian-root.sh path SUITE          prints the path the root has (or will have)
#   .ci/debian-root.sh exec SUITE CMD...   runs CMD in the root as root, with /proc, /sys, /dev
#                                          mounted in a private mount namespace (gone when CMD ends)
#
# SUITE: trixie (Debian 13) or bookworm (Debian 12). Needs root, debootstrap and unshare.
# FILM_ROOT_SRC=DIR mounts DIR at /src for exec (scripts/prebuild-other.js builds from the checkout);
# FILM_ROOT_BIND="DIR..." mounts each DIR read-only at the same path (check:cuda: the CUDA toolkit).
# Environment: FILM_ROOT_CACHE (default /var/cache/film-features/roots), FILM_DEBIAN_MIRROR (default:
# the Debian mirror in this machine's apt sources, else http://deb.debian.org/debian).
# Takes about 2 min for debootstrap and 10-15 min for the packages on 2 cores.
set -euo pipefail

# What the tests run in the root spawn: redis-server (85/87 fleet), openssl (87's TLS certificates),
# ffmpeg (video), python3-torch (float64 references, 66's interpolator references), strace (76's
# --fsync check), patchelf (bundles), g++ (the build; 75's stub addon).
PACKAGES=(nodejs npm g++ cmake make git libtorch-dev libdnnl-dev python3-torch python3-numpy
  redis-server ffmpeg patchelf strace openssl ca-certificates xz-utils)
# Bump when the steps below change in a way that changes the root.
RECIPE=1

cache=${FILM_ROOT_CACHE:-/var/cache/film-features/roots}

die() { echo "debian-root: $*" >&2; exit 1; }

mirror() {
  if [ -n "${FILM_DEBIAN_MIRROR:-}" ]; then echo "$FILM_DEBIAN_MIRROR"; return; fi
  # The first Debian archive URI this machine's apt uses (deb822 "URIs:" or one-line "deb URI").
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE '(https?://[^ ]+/debian)/?( |$)' | grep -v -- '-security' | head -n1 | tr -d ' ' || true)
  echo "${uri%/}" | grep . || echo http://deb.debian.org/debian
}

root_path() {
  local suite=$1 key
  key=$(printf '%s\n' "$RECIPE" "$suite" "$(mirror)" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
  echo "$cache/$suite-$key"
}

# Mount what chroot'ed tools need, privately, then run the command; the mounts vanish with it.
in_root() {
  local dir=$1; shift
  unshare --mount --propagation private -- /bin/sh -c '
    dir=$1; shift
    mount --bind "$dir" "$dir"  # the root a mount point of its own: unshare --mount-proc inside it (tests) needs one
    mount -t proc proc "$dir/proc"
    mount --rbind /sys "$dir/sys"
    mount --rbind /dev "$dir/dev"
    mount -t tmpfs tmpfs "$dir/tmp"
    if [ -n "${FILM_ROOT_SRC:-}" ]; then mkdir -p "$dir/src" && mount --bind "$FILM_ROOT_SRC" "$dir/src"; fi
    for d in ${FILM_ROOT_BIND:-}; do mkdir -p "$dir$d" && mount --bind -o ro "$d" "$dir$d"; done
    exec chroot "$dir" /usr/bin/env HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' in_root "$dir" "$@"
}

# The host's CA bundle and npm config, so the registry is reached the same way as on the host.
copy_host_config() {
  local dir=$1 f
  mkdir -p "$dir/usr/local/share/ca-certificates" "$dir/etc/ssl/certs"
  for f in /usr/local/share/ca-certificates/*.crt; do [ -e "$f" ] && cp "$f" "$dir/usr/local/share/ca-certificates/"; done
  [ -e /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
  [ -e /etc/npmrc ] && cp /etc/npmrc "$dir/etc/npmrc"
  [ -e "$HOME/.npmrc" ] && cp "$HOME/.npmrc" "$dir/root/.npmrc"
  return 0
}

make_root() {
  local suite=$1 dir tmp start
  dir=$(root_path "$suite")
  if [ -e "$dir/.complete" ]; then echo "$dir"; return; fi
  if ! command -v debootstrap >/dev/null; then
    # This machine's CI runs as root with apt (.ci/run): install it; elsewhere, say how.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "debian-root: installing debootstrap" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2; } ||
        die "apt-get could not install debootstrap"
    else
      die "debootstrap is missing (apt-get install debootstrap)"
    fi
  fi
  mkdir -p "$cache"
  # One maker at a time; a second waits, then finds the root made.
  exec 9>"$dir.lock"
  flock 9
  if [ -e "$dir/.complete" ]; then echo "$dir"; return; fi
  start=$(date +%s)
  tmp="$dir.partial"
  rm -rf --one-file-system "$tmp"
  echo "debian-root: debootstrap $suite from $(mirror) into $tmp" >&2
  debootstrap --variant=minbase "$suite" "$tmp" "$(mirror)" >&2
  # No daemon starts inside the root when its package is installed (tests start their own redis).
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
  chmod +x "$tmp/usr/sbin/policy-rc.d"
  copy_host_config "$tmp"
  echo "debian-root: installing ${PACKAGES[*]}" >&2
  in_root "$tmp" sh -c 'export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends "$@" && apt-get clean
    update-ca-certificates >/dev/null' apt "${PACKAGES[@]}" >&2
  copy_host_config "$tmp"
  printf '%s\n' "${PACKAGES[@]}" > "$tmp/.packages"
  echo "made in $(( $(date +%s) - start )) s on $(date -u +%FT%TZ)" > "$tmp/.complete"
  mv "$tmp" "$dir"
  echo "debian-root: $suite ready in $(( $(date +%s) - start )) s" >&2
  echo "$dir"
}

cmd=${1:-}; suite=${2:-}
case "$suite" in trixie|bookworm) ;; *) die "usage: $0 make|path|exec trixie|bookworm [CMD...]" ;; esac
case "$cmd" in
  make) make_root "$suite" ;;
  path) root_path "$suite" ;;
  exec)
    shift 2
    dir=$(root_path "$suite")
    [ -e "$dir/.complete" ] || die "no $suite root at $dir; run: $0 make $suite"
    copy_host_config "$dir"  # the host's CA and npm config may have changed since it was made
    in_root "$dir" "$@" ;;
  *) die "usage: $0 make|path|exec trixie|bookworm [CMD...]" ;;
esac
