# longhorn-bi-webhook image: `docker build -t longhorn-bi-webhook .`
# Runtime dependencies come from the pinned lock (used as constraints), nothing else.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY longhorn_bi/ longhorn_bi/
COPY engine/ engine/
COPY plugin/ plugin/
COPY webhook/ webhook/
# pip refuses extras in a constraints file (moto[server]): strip them first.
RUN sed 's/\[[^]]*\]//' requirements/lock.txt > /tmp/constraints.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      -c /tmp/constraints.txt .

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The chart runs it as 65532 with a read-only root filesystem; /tmp is an emptyDir.
USER 65532:65532
EXPOSE 9443 8080
ENTRYPOINT ["longhorn-bi-webhook"]
CMD ["serve"]
