# Image for the API and the worker of docker-compose.yml (same image, different command). Node 24 LTS, the same
# release scripts/install-node.sh installs. The build stage type-checks and compiles the TypeScript to dist/
# (`npm run build`) and bundles the workflow code once into dist/workflow-bundle.js; the runtime stage has only
# the production packages and dist/, and runs it with plain `node` (no tsx, no webpack at worker start).
# Install scripts are skipped as on the dev machines: the project works without them (esbuild's, swc's and the
# TypeScript compiler's binaries come from their platform packages; ssh2/cpu-features would need a compiler).
FROM node:24.22.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:24.22.3-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist

ENV PORT=8080 \
    CTRLPLANE_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js \
    NODE_OPTIONS=--enable-source-maps
USER node
EXPOSE 8080
# The worker service overrides this with: node dist/worker/main.js (and migrate with node dist/db/migrate-cli.js)
CMD ["node", "dist/api/main.js"]
