# ghcr.io/admitlb/admitlb:<version> (package.json "version"): one image for the webhook + controller
# Deployment and the speaker DaemonSet.
#
#   docker build -t ghcr.io/admitlb/admitlb:0.1.0 .
#
# The TypeScript sources run as they are: bin/admitlb.js registers tsx, a runtime dependency, which
# transpiles on load and caches under $TMPDIR (an emptyDir on /tmp in the manifests, whose root
# filesystem is read-only). No build step, no dev dependencies in the image.
# Debian bookworm pinned so that the apt package names below stay valid.
ARG NODE_IMAGE=node:22-bookworm-slim
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
# build time; esbuild (under tsx) and koffi (FFI for TCP MD5 keys and the BFD TTL filter) find their
# platform binaries through their optional dependencies.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# .dockerignore admits only what the program needs: never certs/ or webhook-manifests/generated/.
COPY tsconfig.json ./
COPY bin/ bin/
COPY src/ src/
# `admitlb` on PATH, for `kubectl exec ... -- admitlb help`.
RUN chmod 0755 bin/admitlb.js && ln -s /app/bin/admitlb.js /usr/local/bin/admitlb

# Non-root by default (the webhook Deployment also sets 65532 explicitly). The speaker DaemonSet runs
# as root with NET_ADMIN, NET_RAW and NET_BIND_SERVICE only: Kubernetes cannot give a non-root process
# ambient capabilities, and ip/arping/na6 would lose them on exec.
USER 65532:65532

ENTRYPOINT ["node", "/app/bin/admitlb.js"]
CMD ["help"]
