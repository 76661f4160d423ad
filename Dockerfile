# syntax=docker/dockerfile:1
# hookrelay: multi-stage image on Debian 13 with Debian's own nodejs (20.x, patched by
# Debian's security team; upstream Node 20 reached its end of life on 2026-04-30, so
# node:20 images get no more rebuilds). glibc, not Alpine: the uWebSockets.js binaries are
# glibc-only. Build for the machine it runs on, or both:
#   docker buildx build --platform linux/amd64,linux/arm64 -t hookrelay .
# Run (see README "Docker"):
#   docker run -d --name hookrelay -p 8080:8080 -v hookrelay-data:/var/lib/hookrelay \
#     -e RUNFLOW_WEBHOOK_SECRET=whsec_… -e HOOKRELAY_TOKEN=… hookrelay
# scripts/docker-dry-build.sh runs these same steps without Docker, in a Debian 13 rootfs.

ARG BASE_IMAGE=debian:trixie-slim

# ---- build: TypeScript → dist/, production node_modules for the target platform -------
FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: tsc needs no native module, and the benchmarks' devDependency
# better-sqlite3 would otherwise download or compile one here for nothing.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
# Runs in the target platform's stage, so lmdb, msgpackr-extract and uWebSockets.js get
# the binaries of that architecture (linux/amd64, linux/arm64). The uWebSockets.js
# package carries binaries for every platform (~110 MB): keep only this one's (the relay
# refuses to start without it).
WORKDIR /opt/hookrelay
RUN cp /src/package.json /src/package-lock.json ./ \
 && npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && keep="uws_$(node -p 'process.platform + "_" + process.arch + "_" + process.versions.modules').node" \
 && test -f "node_modules/uWebSockets.js/binaries/$keep" \
 && find node_modules/uWebSockets.js -name 'uws_*.node' ! -path "*/binaries/$keep" -delete \
 && cp -r /src/dist ./dist

# ---- runtime: Debian's nodejs, no npm ------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
# tini reaps zombies and forwards SIGTERM/SIGHUP to node (PID 1 ignores signals it has
# no handler for), so the image needs no `docker run --init`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/hookrelay --shell /usr/sbin/nologin hookrelay
ENV NODE_ENV=production
WORKDIR /opt/hookrelay
COPY --from=build /opt/hookrelay ./
COPY config/container.yaml /etc/hookrelay/hookrelay.yaml
RUN mkdir -p /var/lib/hookrelay && chown hookrelay:hookrelay /var/lib/hookrelay && chmod 0700 /var/lib/hookrelay
USER hookrelay
VOLUME /var/lib/hookrelay
EXPOSE 8080
# Exits 0 when /readyz answers 200 (the URL comes from the config's listen block).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node","dist/cli.js","healthcheck","--config","/etc/hookrelay/hookrelay.yaml"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini","--","node","dist/cli.js"]
CMD ["serve","--config","/etc/hookrelay/hookrelay.yaml"]
