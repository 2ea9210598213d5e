# syntax=docker/dockerfile:1
# cairn: the node agent image. The same image serves the restore-wait init container
# (`cairn restore-helper`, also as /velero-restore-helper) and, for users who swap only the image of
# Velero's DaemonSet, Velero's command line (/velero node-agent server …).

# --- build: TypeScript + the native addon (node-gyp needs python3, make, g++: all in this image) ---
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY native ./native
# --build-from-source: zstd-napi would otherwise download a prebuilt binary, and without its
# static zstd library our addon builds without the blob kernels (slower, silently).
RUN npm ci --no-audit --no-fund --build-from-source
COPY tsconfig.base.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev
# Fail the build, not the first backup, when a native part is missing.
RUN node --input-type=module -e "const { native } = await import('./dist/native/index.js'); \
      if (native.kind !== 'native' || native.blobKernels !== 'native') { console.error('native addon incomplete:', native.kind, native.blobKernels); process.exit(1); } \
      await import('zstd-napi'); console.log('native:', native.blobKernelsInfo);"

# --- runtime: slim Node; tini as PID 1 so signals reach the agent and zombies are reaped ---
FROM node:20-bookworm-slim
# attr: getfattr/setfattr for the TypeScript fallback of the xattr calls
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini attr \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /opt/cairn
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/native/build/Release/cairn_native.node ./native/build/Release/cairn_native.node
RUN ln -s /opt/cairn/dist/cli.js /usr/local/bin/cairn && chmod +x /opt/cairn/dist/cli.js
# Velero compatibility: the paths Velero's manifests and injected init containers execute.
#   /velero node-agent server [flags]   (restic server on ≤1.9) → cairn agent [supported flags]
#   /velero-restore-helper <restore-uid>                        → cairn restore-helper <restore-uid>
#   /velero-restic-restore-helper <restore-uid>  (≤1.9 name)    → the same
COPY --chmod=0755 scripts/image/velero /velero
COPY --chmod=0755 scripts/image/velero-restore-helper /velero-restore-helper
RUN ln -s /velero-restore-helper /velero-restic-restore-helper
# Unprivileged by default. The node agent DaemonSet sets runAsUser: 0 (it must read every file of
# every pod volume and restore ownership); the restore helper works as any user (it only reads the
# world-readable markers; removing them is best effort).
USER 65532:65532
ENTRYPOINT ["/usr/bin/tini", "--", "cairn"]
CMD ["--help"]
