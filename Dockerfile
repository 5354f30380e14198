# One image for both services (compose picks the command: dist/gateway.mjs or dist/monitor.mjs).
# Stage 1 installs the workspace with the pinned pnpm and bundles each service into one
# plain-JavaScript file (`pnpm build`, esbuild). Stage 2 is node + those files only: no
# node_modules, no TypeScript loader, run as the non-root `node` user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN npm install -g pnpm@10.34.8
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/shared/package.json packages/shared/
COPY packages/gateway/package.json packages/gateway/
COPY packages/monitor/package.json packages/monitor/
COPY packages/testkit/package.json packages/testkit/
COPY packages/cli/package.json packages/cli/
RUN pnpm install --frozen-lockfile --prod
COPY tsconfig.base.json ./
COPY scripts scripts
COPY packages/shared/src packages/shared/src
COPY packages/gateway/src packages/gateway/src
COPY packages/monitor/src packages/monitor/src
COPY packages/cli/src packages/cli/src
RUN pnpm build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 8000 8001
# V8 flags as the bench measures them (SHIPPED_V8 in bench/bench-options.ts): 8 MB semi-spaces
# and 20 % heap growth: the CPU of V8's defaults with less RSS under load; no memory reducer: a
# burst after a quiet spell costs no extra (docs/performance.md).
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=20", "--no-memory-reducer", "dist/gateway.mjs"]
