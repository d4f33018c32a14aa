# vodhub image: one image for every process (`vodhub api|relay|worker|projector|dev`).
#
#   DOCKER_BUILDKIT=1 docker build -t vodhub:0.1.0 .    (BuildKit: the cache mounts below)
#   docker run --rm -p 127.0.0.1:8000:8000 --read-only --tmpfs /tmp -v vodhub-data:/var/lib/vodhub vodhub:0.1.0 dev
#
# Stage 1 installs the locked dependencies (uv.lock, --frozen: the lock is never re-resolved)
# and the project itself as a wheel into /opt/vodhub/venv; stage 2 copies only that venv onto
# a clean Python and runs as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The uv version the Makefile bootstraps.
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/vodhub/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
# Then the project, installed as a wheel (not editable: the sources are not kept).
COPY README.md ./
COPY domain ./domain
COPY application ./application
COPY adapters ./adapters
COPY entrypoints ./entrypoints
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="vodhub" \
      org.opencontainers.image.description="Video-on-demand backend: accounts, uploads, PyAV transcoding, HLS/DASH/MP4 streaming"
RUN groupadd --system --gid 10001 vodhub \
 && useradd --system --uid 10001 --gid vodhub --home-dir /var/lib/vodhub --shell /usr/sbin/nologin vodhub \
 && install -d -o vodhub -g vodhub -m 0750 /var/lib/vodhub \
 && install -d -o vodhub -g vodhub -m 0700 /var/lib/vodhub/keys \
 && install -d -o vodhub -g vodhub -m 0700 /var/lib/vodhub/webhooks \
 && install -d -o vodhub -g vodhub -m 0700 /var/lib/vodhub/work
COPY --from=build /opt/vodhub/venv /opt/vodhub/venv
# The one-shot jobs of docker-compose.yml (bucket, signing key, webhook-secret key).
COPY deploy/create_jwt_key.py deploy/create_webhooks_key.py /opt/vodhub/
ENV PATH=/opt/vodhub/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VODHUB_HOST=0.0.0.0 \
    VODHUB_PORT=8000 \
    VODHUB_DATA_DIR=/var/lib/vodhub
USER vodhub:vodhub
WORKDIR /var/lib/vodhub
EXPOSE 8000
# Liveness of the HTTP processes (api, dev); docker-compose.yml checks readiness instead and
# turns the check off for the processes that serve no HTTP.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('VODHUB_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["vodhub"]
CMD ["api"]
