# longhorn-bi image for pipelines and for the webhook: `docker build -t longhorn-bi .`
#
# The default command is the plugin run as a KRM function (`validate --krm`): kustomize and
# kpt start a function's image without arguments. Any arguments replace it, e.g.
#   docker run --rm -v "$PWD:/work:ro" longhorn-bi validate manifests/
# The chart starts the webhook by naming its command (longhorn-bi-webhook).
#
# Base: python:3.11-slim (Debian trixie, Python 3.11.15) pinned by the digest of its
# multi-platform index as docker-library/repo-info records it (repos/python/remote/3.11-slim.md,
# commit 2477d553d2fd). Bump both together.
ARG BASE=python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff

FROM ${BASE} AS build
WORKDIR /src
COPY requirements/runtime.txt requirements/runtime.txt
# Runtime dependencies exactly as locked: every file is checked against the lock's hashes,
# and only wheels are taken (no build step runs code from a download).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --require-hashes --only-binary=:all: --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY longhorn_bi/ longhorn_bi/
COPY engine/ engine/
COPY plugin/ plugin/
COPY webhook/ webhook/
# Our own package, built with the base's setuptools (no download) and installed without
# dependencies; then the venv loses its installers.
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps \
      --no-build-isolation --wheel-dir /tmp/dist . \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps \
      --no-index /tmp/dist/*.whl \
 && /opt/venv/bin/pip uninstall --yes --disable-pip-version-check setuptools pip

FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="longhorn-bi" \
      org.opencontainers.image.description="Validate Longhorn backing-image backup and restore manifests; admission webhook" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Nothing in the image can install packages: the base's pip, setuptools and wheel go, and so
# does ensurepip, which carries a pip of its own.
RUN rm -rf /usr/local/lib/python3.11/site-packages/* /usr/local/lib/python3.11/ensurepip \
      /usr/local/bin/pip /usr/local/bin/pip3 /usr/local/bin/pip3.11 /usr/local/bin/wheel
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The chart runs it as 65532 with a read-only root filesystem; /tmp is an emptyDir.
USER 65532:65532
WORKDIR /work
EXPOSE 9443 8080
ENTRYPOINT ["kubectl-longhorn_bi"]
CMD ["validate", "--krm"]
