# portcullis in a container (README, "Deploying", for the `docker run` lines).
#
# Not built on the machine it was written on (it has no Docker engine):
# test/deploy/dockerfile.test.ts checks its directives, and
# test/deploy/file-capabilities.test.ts applies its setcap lines to copies of
# the binaries and runs them as a non-root user under Docker's default
# capability bounding set, with and without --cap-add NET_ADMIN.

ARG NODE_IMAGE=node:20-bookworm-slim

# Compiles TypeScript with every dependency; only dist/ leaves this stage.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only, installed from the lock file.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
# nftables and conntrack for kernel bans (escalation.backend: nftables).
#
# Docker gives a non-root user no ambient capabilities: --cap-add only
# widens the bounding set. File capabilities grant them on exec instead,
# one binary each, to what that binary needs:
# - node: cap_net_bind_service, for ports 80 and 443 with --network host
#   (in its own network namespace Docker already lets anyone bind them).
#   Not cap_net_admin: a file capability the bounding set lacks makes exec
#   fail (EPERM), so node would not start without --cap-add NET_ADMIN.
# - nft and conntrack: cap_net_admin. portcullis runs them as children,
#   which inherit nothing; without --cap-add NET_ADMIN they fail to run, a
#   firewall error portcullis logs and counts, and bans stay in the proxy.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables conntrack libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && setcap cap_net_bind_service=ep /usr/local/bin/node \
 && setcap cap_net_admin=ep /usr/sbin/nft \
 && setcap cap_net_admin=ep /usr/sbin/conntrack \
 && install -d -o node -g node -m 0750 /var/lib/portcullis \
 && install -d -m 0755 /etc/portcullis

WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The embedded default policy, and a starting point in the config volume.
COPY config ./config
COPY config/portcullis.yaml /etc/portcullis/portcullis.yaml

# The policy (and certificates) come from the host; bans, ban history and
# buffering's temp files persist in the state volume (state_dir).
VOLUME ["/etc/portcullis", "/var/lib/portcullis"]
USER node
EXPOSE 80 443

# /healthz of the admin API (admin.listen, 127.0.0.1:9181 by default): inside
# the container's own network namespace, or the host's with --network host.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9181/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM finishes requests in flight (up to 10 s); SIGHUP (docker kill -s HUP) reloads.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["serve", "--config", "/etc/portcullis/portcullis.yaml"]
