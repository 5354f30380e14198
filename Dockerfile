# One image for both services (gateway and monitor; compose picks the command).
# Stage 1 installs production dependencies with the pinned pnpm; stage 2 is a slim
# runtime with only node, node_modules and the sources, running as the non-root `node` user.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN npm install -g pnpm@10.34.8
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/shared/package.json packages/shared/
COPY packages/gateway/package.json packages/gateway/
COPY packages/monitor/package.json packages/monitor/
COPY packages/testkit/package.json packages/testkit/
RUN pnpm install --frozen-lockfile --prod

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=node:node /app /app
COPY --chown=node:node tsconfig.base.json ./
COPY --chown=node:node packages/shared/src packages/shared/src
COPY --chown=node:node packages/gateway/src packages/gateway/src
COPY --chown=node:node packages/monitor/src packages/monitor/src
USER node
EXPOSE 8000 8001
CMD ["node", "--import", "tsx", "packages/gateway/src/main.ts"]
