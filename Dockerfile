# syntax=docker/dockerfile:1
#
# fraudscore — one image for both deployment units (and a second, larger one for scheduled retraining):
#   docker build -t fraudscore .
#   docker run --rm -p 8080:8080 -e REDIS_URL=redis://host:6379 fraudscore                  # serve (CMD)
#   docker run --rm --no-healthcheck -e KAFKA_BROKERS=host:9092 -e REDIS_URL=redis://host:6379 fraudscore worker
# The worker has no /health/live, hence --no-healthcheck (Kubernetes ignores HEALTHCHECK and uses the probes in k8s/).
#   docker build --target retrain -t fraudscore-retrain .   # + Python and the training package (k8s CronJob)
# Models: the image ships models/ at MODEL_DIR=/app/models; mount a volume there (or anywhere, and set MODEL_DIR)
# to serve versions published after the image was built.

# ---- build: full dependency tree, TypeScript → dist/ -------------------------------------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
# Manifests first so editing src/ does not re-run npm ci. .npmrc skips onnxruntime-node's CUDA download.
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
# .dockerignore whitelists what the context holds (src/, features/, models/, tsconfig*.json), so this is not
# "everything": tests, training data, node_modules and secrets never reach the image.
COPY . .
# The Redis store loads its Lua scripts from next to the compiled code: fail the build, not the first request.
RUN npm run build \
  && test -f dist/src/cli/main.js \
  && test -d dist/src/adapters/redis/lua \
  && mkdir -p models

# ---- base: production dependencies, compiled code, feature definitions, models -------------------------
FROM node:22-bookworm-slim AS base
ARG VERSION=0.0.0-dev
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="fraudscore" \
      org.opencontainers.image.description="Real-time fraud scoring API and Kafka feature worker" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}"
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODEL_DIR=/app/models \
    FEATURE_DIR=/app/features
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# onnxruntime-node ships native libraries for every OS (~290 MB); only the Linux ones can load here.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund \
  && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 -type d ! -name linux -exec rm -rf {} + \
  && test -n "$(find node_modules/onnxruntime-node/bin -path '*/linux/*' -name 'onnxruntime_binding.node')"
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/features ./features
COPY --from=build /app/models ./models

# ---- retrain: base + Debian's Python 3.11 and the training package (`fraudscore retrain`, the CronJob) -----
# Not the default target: the API and the worker never need Python. The CLI's defaults find it at
# training/.venv/bin/python and training/ (FRAUDSCORE_PYTHON, FRAUDSCORE_TRAINING_DIR). Spark and pytest stay
# out (the CronJob runs the node engine; Spark backfills run on a Spark cluster, see training/README.md).
FROM base AS retrain
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 python3-venv libgomp1 \
  && rm -rf /var/lib/apt/lists/*
COPY training/requirements.txt training/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip python3 -m venv training/.venv \
  && grep -vE '^(pyspark|pytest)==' training/requirements.txt > /tmp/requirements.txt \
  && training/.venv/bin/pip install --disable-pip-version-check -r /tmp/requirements.txt \
  && rm /tmp/requirements.txt
COPY training/fraudscore_training training/fraudscore_training
USER 1000:1000
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["retrain", "--help"]

# ---- runtime: the API and the worker (the default target) ---------------------------------------------
FROM base AS runtime
# Files stay root-owned and read-only to the process; uid 1000 is the image's `node` user. Numeric, so
# Kubernetes' runAsNonRoot can verify it without resolving names.
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT||8080}/health/live`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (serve drains, worker commits and exits).
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
