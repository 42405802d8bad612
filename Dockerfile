# syntax=docker/dockerfile:1
#
# drivequant-task-exporter image.
#   docker build -t drivequant-task-exporter .
#   docker run -p 9850:9850 \
#     -v ./config.yaml:/etc/drivequant-task-exporter/config.yaml:ro \
#     -e DRIVEQUANT_API_KEY drivequant-task-exporter
# Without a config file, `docker run ... drivequant-task-exporter --demo` shows
# the exporter polling its bundled simulator.

# Build stage: every dependency, TypeScript compiled to dist/. Debian-based,
# because the compiler and linter ship native binaries built for glibc.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies (all plain JavaScript) and the
# compiled output only, on the smaller Alpine base.
FROM node:20-alpine
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force
COPY --from=build /app/dist ./dist

# Tasks registered through the API are kept here: set `storage.path:
# /var/lib/drivequant-task-exporter` in the config (the default, ./data beside the
# config file, is read-only in this image).
RUN mkdir -p /var/lib/drivequant-task-exporter \
  && chown node:node /var/lib/drivequant-task-exporter
VOLUME /var/lib/drivequant-task-exporter

# The official image's unprivileged user (uid 1000).
USER node
EXPOSE 9850

# Node 20 has fetch built in, so the image needs no curl. The port must match
# --web.listen-address.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9850/-/healthy').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["--config.file=/etc/drivequant-task-exporter/config.yaml"]
