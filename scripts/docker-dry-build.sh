#!/usr/bin/env bash
# The Dockerfile's steps without a Docker engine (none runs here): a clean clone
# of the committed tree, the build stage (npm ci + tsc), the runtime stage
# (npm ci --omit=dev into a fresh directory, dist/ copied over, the container
# config), then `serve` on that config, `healthcheck` → 0, a signed callback →
# 200, SIGTERM → exit 0, `healthcheck` → 1.
#
# Not covered (needs Docker): the base image itself, apt-get install tini, the
# non-root USER and volume ownership, HEALTHCHECK scheduling, and building the
# other architecture (buildx --platform linux/arm64).
#
#   scripts/docker-dry-build.sh            # clones HEAD of this repository
#   REF=<commit> KEEP=1 scripts/docker-dry-build.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ref=${REF:-HEAD}
work=$(mktemp -d "${TMPDIR:-/tmp}/hookrelay-dry.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }

step "Dockerfile: what the issue asks for is there"
df="$root/Dockerfile"
grep -q '^ARG NODE_IMAGE=node:20-bookworm-slim' "$df" || fail "base image"
[ "$(grep -c '^FROM ${NODE_IMAGE} AS' "$df")" = 2 ] || fail "two stages"
grep -q 'npm ci --omit=dev' "$df" || fail "npm ci --omit=dev in the runtime stage"
grep -q '^USER node' "$df" || fail "non-root user"
grep -q '^VOLUME /var/lib/hookrelay' "$df" || fail "VOLUME"
grep -q '^EXPOSE 8080' "$df" || fail "EXPOSE"
grep -q 'CMD \["node","dist/cli.js","healthcheck","--config","/etc/hookrelay/hookrelay.yaml"\]' "$df" || fail "HEALTHCHECK"
grep -q 'tini' "$df" || fail "init"
echo ok

step "clone $ref (what docker build's context would hold, minus .dockerignore)"
git clone -q "$root" "$work/src"
git -C "$work/src" checkout -q "$ref"
for f in package.json package-lock.json tsconfig.json tsconfig.build.json src config/container.yaml; do
  [ -e "$work/src/$f" ] || fail "COPY source $f missing from the commit"
done
echo "$(git -C "$work/src" rev-parse --short HEAD)"

step "build stage: npm ci --ignore-scripts && npm run build"
(cd "$work/src" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run build --silent)
[ -f "$work/src/dist/cli.js" ] || fail "no dist/cli.js"

step "runtime stage: npm ci --omit=dev in a fresh directory ($(uname -m))"
app="$work/opt/hookrelay"
mkdir -p "$app" "$work/etc/hookrelay" "$work/var/lib/hookrelay"
cp "$work/src/package.json" "$work/src/package-lock.json" "$app/"
(cd "$app" && NODE_ENV=production npm ci --omit=dev --no-audit --no-fund --loglevel=error)
cp -r "$work/src/dist" "$app/dist"
# As the Dockerfile: only this platform's uWebSockets.js binary stays.
keep="uws_$(node -p 'process.platform + "_" + process.arch + "_" + process.versions.modules').node"
[ -f "$app/node_modules/uWebSockets.js/binaries/$keep" ] || fail "no $keep in uWebSockets.js"
find "$app/node_modules/uWebSockets.js/binaries" -name 'uws_*.node' ! -name "$keep" -delete
for dev in typescript tap better-sqlite3 s3rver @types/node; do
  [ ! -e "$app/node_modules/$dev" ] || fail "devDependency $dev in the runtime stage"
done
du -sh "$app/node_modules" | awk '{print "node_modules: " $1}'

port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
cfg="$work/etc/hookrelay/hookrelay.yaml"
sed -e "s|data_dir: /var/lib/hookrelay|data_dir: $work/var/lib/hookrelay|" -e "s|port: 8080|port: $port|" \
  "$work/src/config/container.yaml" > "$cfg"

cd "$app"
step "check-config (container config, data_dir and port moved into $work)"
node dist/cli.js check-config --config "$cfg"

step "serve + healthcheck"
node dist/cli.js serve --config "$cfg" > "$work/serve.log" 2>&1 &
pid=$!
ready=0
for _ in $(seq 1 75); do
  if node dist/cli.js healthcheck --config "$cfg" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; fail "serve exited"; }
  sleep 0.2
done
[ "$ready" = 1 ] || { cat "$work/serve.log"; fail "not ready within 15 s"; }
node dist/cli.js healthcheck --config "$cfg"
echo "healthcheck exit 0"
node dist/cli.js send --config "$cfg" | tee "$work/send.out"
grep -q '^200 ' "$work/send.out" || fail "send"

step "SIGTERM → exit 0, then healthcheck → 1"
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
[ "$code" = 0 ] || { cat "$work/serve.log"; fail "serve exited $code on SIGTERM"; }
echo "serve exit 0"
if node dist/cli.js healthcheck --config "$cfg" >/dev/null 2>&1; then fail "healthcheck said ready after the stop"; fi
echo "healthcheck exit 1"
echo
echo PASS
