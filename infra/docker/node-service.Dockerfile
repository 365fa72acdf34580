# One image for every VantageEdge Node service (control plane, projectors, gateway, migrator);
# docker-compose.yml picks the entry point with `command`. The image runs the compiled bundles of
# `make build` (dist/) on plain Node 24 with production dependencies only: no TypeScript, no tsx.
# The build stage runs exactly what CI runs (npm ci, then node_modules/.bin/tsx scripts/build.ts).

# ---- build: every dependency, then the bundles ----
FROM node:24-slim AS build
WORKDIR /app
# npm workspaces: every workspace's package.json must be there before npm ci.
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY migrations/package.json migrations/
COPY projections/package.json projections/
COPY services/control-plane/package.json services/control-plane/
COPY services/gateway/package.json services/gateway/
COPY services/dev/package.json services/dev/
COPY services/console/package.json services/console/
COPY tools/cli/package.json tools/cli/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.ts scripts/build-entry-points.ts scripts/console-build.ts scripts/service-bundle.ts scripts/
COPY shared ./shared
COPY migrations ./migrations
COPY projections ./projections
COPY services ./services
COPY tools ./tools
RUN node_modules/.bin/tsx scripts/build.ts

# ---- production dependencies only ----
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY migrations/package.json migrations/
COPY projections/package.json projections/
COPY services/control-plane/package.json services/control-plane/
COPY services/gateway/package.json services/gateway/
COPY services/dev/package.json services/dev/
COPY services/console/package.json services/console/
COPY tools/cli/package.json tools/cli/
# The workspace links point at sources the runtime image does not have; the bundles contain them.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force && rm -rf node_modules/@vantageedge

# ---- runtime ----
FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS="--enable-source-maps"
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json ./
COPY --from=build --chown=node:node /app/dist ./dist
# The image's built-in unprivileged user.
USER node
ENTRYPOINT ["node"]
CMD ["dist/services/gateway/main.js"]
