# The Flowtide image: the worker (its default command), `flowtide serve` and the CLI.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY flowtide ./flowtide
# every room flowtide/ links to (tests/unit/test_compose.py checks the list)
COPY workflows ./workflows
COPY activities ./activities
COPY guards ./guards
COPY store ./store
COPY worker ./worker
COPY client ./client
COPY service ./service
COPY dev ./dev
COPY examples ./examples
# js: JavaScript code steps (mini-racer); otel: traces (docs/tracing.md); /app/data: the default root of file
# steps (FLOWTIDE_FILE_ROOTS)
RUN pip install --no-cache-dir ".[postgres,js,otel]" && useradd --create-home flowtide \
    && mkdir -p /app/data && chown flowtide /app/data
USER flowtide
# SIGTERM lets in-flight steps finish (FLOWTIDE_GRACEFUL_SHUTDOWN_S) before the worker exits.
STOPSIGNAL SIGTERM
CMD ["flowtide", "worker"]
