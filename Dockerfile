# Image for the API and the worker of docker-compose.yml (same image, different command).
# TypeScript runs through tsx, which is a runtime dependency: there is no build step, and the install is a plain
# `npm ci` (not --omit=dev). Install scripts are skipped as on the dev machines: the project works without them
# (esbuild's binary comes from its platform package; ssh2/cpu-features would need a compiler).
FROM node:20-bookworm-slim

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY . .

ENV NODE_ENV=production \
    PORT=8080
USER node
EXPOSE 8080
# The worker service overrides this with: node --import tsx worker/main.ts
CMD ["node", "--import", "tsx", "api/main.ts"]
