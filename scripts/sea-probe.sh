#!/usr/bin/env bash
# The design npm run package did not take, built only to measure it against the tarball
# (BENCHMARKS.md "Release artifacts"): a Node single-executable application (SEA, postject)
# made from a linux-x64 release tarball. The project has no bundler, so the SEA cannot carry
# the app as one script: its blob carries the whole app (dist/, config/, node_modules/ with
# the .node files) as one asset, extracted once into ~/.cache/hookrelay/<sha256> (checksummed
# before use) and loaded from there with require(esm).
#   scripts/sea-probe.sh release/hookrelay-0.1.0-linux-x64.tar.gz OUT_DIR
set -euo pipefail

tarball=${1:?release tarball}
out=${2:?output directory}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/hookrelay-sea.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
app=$(echo "$work"/hookrelay-*)
# The app as an uncompressed ustar archive without the runtime (the SEA is the runtime) and
# without node_modules/.bin (symlinks the extractor does not need).
tar --format=ustar --sort=name --owner=0 --group=0 --exclude=./node --exclude=./hookrelay \
  --exclude='./node_modules/.bin' -C "$app" -cf "$work/app.tar" .

cat > "$work/main.cjs" <<'EOF'
// SEA entry: extract the app once (verified by its SHA-256), then run its CLI.
const { getAsset } = require('node:sea')
const { createHash } = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const os = require('node:os')
const { createRequire } = require('node:module')
const tar = Buffer.from(getAsset('app.tar'))
const sum = createHash('sha256').update(tar).digest('hex')
const base = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'hookrelay')
const dir = path.join(base, sum)
const stamp = path.join(dir, '.sha256')
if (!fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== sum) {
  fs.mkdirSync(base, { recursive: true, mode: 0o700 })
  const tmp = fs.mkdtempSync(path.join(base, '.x'))
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512)
    if (h[0] === 0) break
    const str = (a, b) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '')
    const name = path.join(str(345, 500), str(0, 100))
    const size = parseInt(str(124, 136), 8) || 0
    const mode = parseInt(str(100, 108), 8) & 0o755
    const type = String.fromCharCode(h[156] || 48)
    const target = path.join(tmp, name)
    if (type === '5') fs.mkdirSync(target, { recursive: true, mode: 0o755 })
    else if (type === '0') fs.writeFileSync(target, tar.subarray(off + 512, off + 512 + size), { mode })
    off += 512 + Math.ceil(size / 512) * 512
  }
  fs.writeFileSync(path.join(tmp, '.sha256'), sum)
  fs.rmSync(dir, { recursive: true, force: true })
  fs.renameSync(tmp, dir)
}
createRequire(path.join(dir, 'package.json'))('./dist/cli.js')
EOF
cat > "$work/sea.json" <<EOF
{ "main": "$work/main.cjs", "output": "$work/sea.blob", "disableExperimentalSEAWarning": true, "assets": { "app.tar": "$work/app.tar" } }
EOF
cp "$app/node/bin/node" "$out/hookrelay-sea"
"$app/node/bin/node" --experimental-sea-config "$work/sea.json"
npx --yes postject@1.0.0-alpha.6 "$out/hookrelay-sea" NODE_SEA_BLOB "$work/sea.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2
gzip -9 -k -f "$out/hookrelay-sea"
ls -l "$out/hookrelay-sea" "$out/hookrelay-sea.gz"
