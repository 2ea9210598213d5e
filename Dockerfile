# syntax=docker/dockerfile:1
# cairn: the agent image (the same image also carries the restore helper init container command).

# --- build: TypeScript + the native addon (node-gyp needs python3, make, g++) ---
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# --- runtime: slim Node, tini as PID 1 so signals reach the agent and zombies are reaped ---
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini attr \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/cairn
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/build/Release/cairn_native.node ./native/build/Release/cairn_native.node
RUN ln -s /opt/cairn/dist/cli.js /usr/local/bin/cairn && chmod +x /opt/cairn/dist/cli.js
# The CLI runs as an unprivileged user by default; the node agent DaemonSet sets runAsUser: 0
# because it must read every file of every pod volume and restore ownership.
USER 65532:65532
ENTRYPOINT ["/usr/bin/tini", "--", "cairn"]
CMD ["--help"]
