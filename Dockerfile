# One image for the webhook + controller Deployment and the speaker DaemonSet. Build and push it with
#
#   npm run image -- --push            # docker, podman or buildah, whichever works here
#
# which tags it with the reference in webhook-manifests/kustomization.yaml (`images:`), the one place
# the manifests and the Helm chart take it from; `npm run image -- --image REGISTRY/admitlb:TAG` builds
# another. By hand: docker build -t REGISTRY/admitlb:TAG .
#
# The base is pinned by digest (the multi-arch index of node:22-bookworm-slim, Node 22.23.3, as
# public Dockerfiles pin it; it was not re-resolved against the registry when written here, so
# `docker buildx imagetools inspect node:22-bookworm-slim@sha256:<digest>` is the check), so that a
# rebuild gets the same base until the digest here changes. To update it, resolve the tag's current
# index digest and replace the one below:
#   docker buildx imagetools inspect node:22-bookworm-slim     (the "Digest:" line)
#   crane digest node:22-bookworm-slim
# To build on another base once: npm run image -- --base node:22-bookworm-slim@sha256:<digest>
# (or docker build --build-arg NODE_IMAGE=...). Debian bookworm, so that the apt package names below
# stay valid.
ARG NODE_IMAGE=node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c

# ---- build: TypeScript to JavaScript (npm run build → dist/), with the dev dependencies ----------
FROM ${NODE_IMAGE} AS build
WORKDIR /build
# --ignore-scripts: no install scripts run; the build needs only tsc.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build

# ---- runtime: Node, the production dependencies and dist/ ----------------------------------------
FROM ${NODE_IMAGE}

# The speaker shells out to these: ip (iproute2) for addresses, links and routes, arping
# (iputils-arping) for gratuitous ARP, na6 (ipv6toolkit) for unsolicited neighbour advertisements,
# tcpdump to count the ARP/NS requests the kernel answers (optional: without it that metric stays 0).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 iputils-arping ipv6toolkit tcpdump \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first (cached while only sources change). --ignore-scripts: no install scripts run at
# build time; koffi (FFI for TCP MD5 keys and the BFD TTL filter) finds its platform binary through
# its optional dependencies.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# Only the emitted JavaScript (and its source maps: NODE_OPTIONS=--enable-source-maps maps stack
# traces to src/). Nothing is compiled at run time, so nothing is written: the root filesystem is
# read-only in the manifests. .dockerignore keeps certs/ and webhook-manifests/generated/ out.
COPY --from=build /build/dist/ dist/
# `admitlb` on PATH, for `kubectl exec ... -- admitlb help`.
RUN chmod 0755 dist/bin/admitlb.js && ln -s /app/dist/bin/admitlb.js /usr/local/bin/admitlb

# Non-root by default (the webhook Deployment also sets 65532 explicitly). The speaker DaemonSet runs
# as root with NET_ADMIN, NET_RAW and NET_BIND_SERVICE only: Kubernetes cannot give a non-root process
# ambient capabilities, and ip/arping/na6 would lose them on exec.
USER 65532:65532

ENTRYPOINT ["node", "/app/dist/bin/admitlb.js"]
CMD ["help"]
