#!/usr/bin/env bash
# The Dockerfile's steps without a Docker engine (none runs here), in Debian 13 (trixie)
# rootfs made with debootstrap (scripts/rootfs.sh caches them outside the repository):
#   build stage    a trixie rootfs + Debian's nodejs and npm; a clean clone of the committed
#                  tree in /src: npm ci --ignore-scripts, npm run build; npm ci --omit=dev in
#                  /opt/hookrelay, the other platforms' uWebSockets.js binaries removed
#   runtime stage  a fresh trixie rootfs + Debian's nodejs, tini and ca-certificates, no npm;
#                  the hookrelay system user (uid 10001); /opt/hookrelay copied over from the
#                  build stage; config/container.yaml as /etc/hookrelay/hookrelay.yaml;
#                  /var/lib/hookrelay 0700 owned by hookrelay
# then, as uid 10001 under tini (chroot + setpriv stand in for USER and ENTRYPOINT):
# `serve`, the HEALTHCHECK command → 0, a signed callback → 200, SIGTERM → exit 0,
# the HEALTHCHECK command → 1.
#
# Not covered (needs Docker): the debian:trixie-slim image itself (a minbase debootstrap of
# the same suite stands in), Docker's HEALTHCHECK scheduling, the VOLUME, and building the
# other architecture (buildx --platform linux/arm64). The port is moved off 8080 (a shared
# host may use it): the only change to the container config.
#
#   scripts/docker-dry-build.sh            # clones HEAD of this repository; needs root
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
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot)"
# A private mount namespace per command: its /proc goes away with it.
root_cmd() {
  local r=$1
  shift
  cmd=(unshare --mount sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"' "$r" "$@")
}
in_root() { root_cmd "$@"; "${cmd[@]}"; }

step "Dockerfile: what the issue asks for is there"
df="$root/Dockerfile"
grep -q '^ARG BASE_IMAGE=debian:trixie-slim' "$df" || fail "base image"
[ "$(grep -c '^FROM ${BASE_IMAGE} AS' "$df")" = 2 ] || fail "two stages"
grep -q 'apt-get install -y --no-install-recommends nodejs npm ca-certificates' "$df" || fail "build stage: Debian's nodejs and npm"
grep -q 'apt-get install -y --no-install-recommends nodejs tini ca-certificates' "$df" || fail "runtime stage: Debian's nodejs and tini"
grep -q 'npm ci --omit=dev' "$df" || fail "npm ci --omit=dev"
grep -q 'useradd --system --uid 10001' "$df" || fail "the hookrelay user"
grep -q '^USER hookrelay' "$df" || fail "non-root user"
grep -q '^VOLUME /var/lib/hookrelay' "$df" || fail "VOLUME"
grep -q '^EXPOSE 8080' "$df" || fail "EXPOSE"
grep -q 'CMD \["node","dist/cli.js","healthcheck","--config","/etc/hookrelay/hookrelay.yaml"\]' "$df" || fail "HEALTHCHECK"
grep -q '^ENTRYPOINT \["/usr/bin/tini","--","node","dist/cli.js"\]' "$df" || fail "tini entrypoint"
echo ok

step "clone $ref (what docker build's context would hold, minus .dockerignore)"
git clone -q "$root" "$work/src"
git -C "$work/src" checkout -q "$ref"
for f in package.json package-lock.json tsconfig.json tsconfig.build.json src config/container.yaml; do
  [ -e "$work/src/$f" ] || fail "COPY source $f missing from the commit"
done
git -C "$work/src" rev-parse --short HEAD

step "build stage: trixie + nodejs npm (Debian's)"
b="$work/build"
cp -a "$(bash "$root/scripts/rootfs.sh" trixie "" nodejs npm ca-certificates)" "$b"
in_root "$b" node --version
# This host's network may need its own CA for the registry (NODE_EXTRA_CA_CERTS): the build
# stage gets it the way a docker build behind the same proxy would (a build secret or arg).
ca=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  cp "$NODE_EXTRA_CA_CERTS" "$b/etc/ssl/certs/build-host-ca.crt"
  ca=(NODE_EXTRA_CA_CERTS=/etc/ssl/certs/build-host-ca.crt)
fi
mkdir "$b/src"
cp -r "$work/src"/{package.json,package-lock.json,tsconfig.json,tsconfig.build.json,src} "$b/src/"
in_root "$b" env "${ca[@]}" sh -ec 'cd /src && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run build --silent'
[ -f "$b/src/dist/cli.js" ] || fail "no dist/cli.js"
in_root "$b" env "${ca[@]}" sh -ec '
  mkdir -p /opt/hookrelay && cd /opt/hookrelay && cp /src/package.json /src/package-lock.json ./
  npm ci --omit=dev --no-audit --no-fund --loglevel=error && npm cache clean --force
  keep="uws_$(node -p "process.platform + \"_\" + process.arch + \"_\" + process.versions.modules").node"
  test -f "node_modules/uWebSockets.js/binaries/$keep"
  find node_modules/uWebSockets.js -name "uws_*.node" ! -path "*/binaries/$keep" -delete
  cp -r /src/dist ./dist'
for dev in typescript tap better-sqlite3 s3rver @types/node; do
  [ ! -e "$b/opt/hookrelay/node_modules/$dev" ] || fail "devDependency $dev in /opt/hookrelay"
done
du -sh "$b/opt/hookrelay/node_modules" | awk '{print "node_modules: " $1}'

step "runtime stage: trixie + nodejs tini ca-certificates, user hookrelay"
r="$work/runtime"
cp -a "$(bash "$root/scripts/rootfs.sh" trixie "" nodejs tini ca-certificates)" "$r"
in_root "$r" useradd --system --uid 10001 --user-group --home-dir /var/lib/hookrelay --shell /usr/sbin/nologin hookrelay
[ ! -e "$r/usr/bin/npm" ] || fail "npm in the runtime stage"
mkdir -p "$r/opt/hookrelay" "$r/etc/hookrelay"
cp -a "$b/opt/hookrelay/." "$r/opt/hookrelay/"
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
sed -e "s|port: 8080|port: $port|" "$work/src/config/container.yaml" > "$r/etc/hookrelay/hookrelay.yaml"
in_root "$r" sh -ec 'mkdir -p /var/lib/hookrelay && chown hookrelay:hookrelay /var/lib/hookrelay && chmod 0700 /var/lib/hookrelay'
user_cmd() { root_cmd "$r" setpriv --reuid=10001 --regid=10001 --clear-groups env NODE_ENV=production sh -c 'cd /opt/hookrelay && exec "$@"' sh "$@"; }
as_user() { user_cmd "$@"; "${cmd[@]}"; }
hc() { as_user node dist/cli.js healthcheck --config /etc/hookrelay/hookrelay.yaml; }
as_user id

step "check-config (container config, port $port)"
as_user node dist/cli.js check-config --config /etc/hookrelay/hookrelay.yaml

step "ENTRYPOINT + CMD as hookrelay: tini -- node dist/cli.js serve, then the HEALTHCHECK command"
user_cmd /usr/bin/tini -- node dist/cli.js serve --config /etc/hookrelay/hookrelay.yaml
"${cmd[@]}" > "$work/serve.log" 2>&1 &
pid=$!
ready=0
for _ in $(seq 1 75); do
  if hc >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; fail "serve exited"; }
  sleep 0.2
done
[ "$ready" = 1 ] || { cat "$work/serve.log"; fail "not ready within 15 s"; }
hc
echo "healthcheck exit 0"
[ "$(stat -c %u "$r/var/lib/hookrelay/journal.mdb")" = 10001 ] || fail "journal not owned by hookrelay"
as_user node dist/cli.js send --config /etc/hookrelay/hookrelay.yaml | tee "$work/send.out"
grep -q '^200 ' "$work/send.out" || fail "send"

step "SIGTERM to tini → forwarded, exit 0, then healthcheck → 1"
# unshare, sh, chroot, env, setpriv, env, sh each exec the next: $pid is tini's.
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
[ "$code" = 0 ] || { cat "$work/serve.log"; fail "serve exited $code on SIGTERM"; }
echo "serve exit 0"
if hc >/dev/null 2>&1; then fail "healthcheck said ready after the stop"; fi
echo "healthcheck exit 1"
echo
echo PASS
