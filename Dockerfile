# portcullis in a container. Proxy-level limits and blocks work as is; kernel
# bans (a later release) need --cap-add NET_ADMIN and host networking.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
USER node
EXPOSE 8000
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--config", "/app/config/portcullis.yaml"]
