# syntax=docker/dockerfile:1
# hookrelay: multi-stage image on Debian 12 (glibc; the uWebSockets.js binaries
# are glibc-only, so not Alpine). Build for the machine it runs on, or both:
#   docker buildx build --platform linux/amd64,linux/arm64 -t hookrelay .
# Run (see README "Docker"):
#   docker run -d --name hookrelay -p 8080:8080 -v hookrelay-data:/var/lib/hookrelay \
#     -e RUNFLOW_WEBHOOK_SECRET=whsec_… -e HOOKRELAY_TOKEN=… hookrelay
# scripts/docker-dry-build.sh runs these same steps without Docker.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: TypeScript → dist/ ---------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: tsc needs no native module, and the benchmarks' devDependency
# better-sqlite3 would otherwise download or compile one here for nothing.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime ---------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini reaps zombies and forwards SIGTERM/SIGHUP to node (PID 1 ignores signals
# it has no handler for), so the image needs no `docker run --init`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /opt/hookrelay
COPY package.json package-lock.json ./
# Runs in the target platform's stage, so lmdb, msgpackr-extract and
# uWebSockets.js get the binaries of that architecture (linux/amd64, linux/arm64).
# The uWebSockets.js package carries binaries for every platform (~110 MB):
# keep only this one's (the relay refuses to start without it).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && keep="uws_$(node -p 'process.platform + "_" + process.arch + "_" + process.versions.modules').node" \
 && test -f "node_modules/uWebSockets.js/binaries/$keep" \
 && find node_modules/uWebSockets.js/binaries -name 'uws_*.node' ! -name "$keep" -delete
COPY --from=build /src/dist ./dist
COPY config/container.yaml /etc/hookrelay/hookrelay.yaml
RUN mkdir -p /var/lib/hookrelay && chown node:node /var/lib/hookrelay && chmod 0700 /var/lib/hookrelay
USER node
VOLUME /var/lib/hookrelay
EXPOSE 8080
# Exits 0 when /readyz answers 200 (the URL comes from the config's listen block).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node","dist/cli.js","healthcheck","--config","/etc/hookrelay/hookrelay.yaml"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini","--","node","dist/cli.js"]
CMD ["serve","--config","/etc/hookrelay/hookrelay.yaml"]
