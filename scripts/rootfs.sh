#!/usr/bin/env bash
# Prints the path of a cached minimal Debian rootfs, made on first use with
#   debootstrap --variant=minbase SUITE DIR <apt's configured Debian mirror>
# in $HOOKRELAY_ROOTFS_CACHE (default /var/cache/hookrelay-rootfs, outside the repository).
#   scripts/rootfs.sh bookworm          # Debian 12, this machine's architecture
#   scripts/rootfs.sh trixie            # Debian 13
#   scripts/rootfs.sh bookworm arm64    # a foreign one: unpacked only (--foreign), enough for
#                                       # qemu-aarch64-static -L DIR to find its glibc
#   scripts/rootfs.sh trixie "" nodejs  # Debian 13 plus Debian's own nodejs (apt-get install in the chroot)
# Needs root (debootstrap; apt-get install debootstrap when it is missing). Callers copy the
# rootfs before changing it, so the cache stays clean.
set -euo pipefail

suite=${1:?suite}
arch=${2:-$(dpkg --print-architecture)}
shift $(($# < 2 ? $# : 2))
packages=("$@")
cache=${HOOKRELAY_ROOTFS_CACHE:-/var/cache/hookrelay-rootfs}
name=$suite$([ "$arch" = "$(dpkg --print-architecture)" ] || echo "-$arch")
if [ ${#packages[@]} -gt 0 ]; then
  base=$(bash "$0" "$suite" "$arch")
  dir="$cache/$name-$(IFS=-; echo "${packages[*]}")"
  if [ ! -d "$dir" ]; then
    rm -rf "$dir.partial"
    cp -a "$base" "$dir.partial"
    unshare --mount sh -c 'mount -t proc proc "$0/proc" && chroot "$0" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $*"' \
      "$dir.partial" "${packages[@]}" >&2
    mv "$dir.partial" "$dir"
  fi
  echo "$dir"
  exit 0
fi
dir="$cache/$name"

if [ ! -d "$dir" ]; then
  if ! command -v debootstrap >/dev/null; then
    apt-get install -y -qq --no-install-recommends debootstrap >&2 ||
      { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends debootstrap >&2; }
  fi
  # The mirror apt already uses here (deb822 or one-line sources).
  mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    grep -v security | head -1 | sed -E 's/^(URIs:|deb) +//')
  mkdir -p "$cache"
  rm -rf "$dir.partial"
  foreign=()
  [ "$arch" = "$(dpkg --print-architecture)" ] || foreign=(--arch="$arch" --foreign)
  debootstrap --variant=minbase "${foreign[@]}" "$suite" "$dir.partial" "${mirror:-http://deb.debian.org/debian}" >&2
  mv "$dir.partial" "$dir"
fi
echo "$dir"
