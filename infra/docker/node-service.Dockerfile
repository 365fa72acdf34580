# One image for every VantageEdge Node service (control plane, projectors, gateway, migrator);
# docker-compose.yml picks the entry point with `command`. TypeScript runs through tsx (a runtime
# dependency), so there is no build step to drift from the tested sources.

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json tsconfig.json ./
COPY --chown=node:node shared ./shared
COPY --chown=node:node services ./services
COPY --chown=node:node projections ./projections
COPY --chown=node:node migrations ./migrations
# The image's built-in unprivileged user.
USER node
ENTRYPOINT ["node", "--import", "tsx"]
CMD ["services/gateway/src/main.ts"]
