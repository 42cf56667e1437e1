# The dashboard as a container: slim Python, non-root user, database built at image build time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MALLOC_TOP_PAD_=67108864

RUN useradd --create-home --uid 10001 app
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=app:app . .
# Built now, read-only at run time: every replica carries its own identical copy (and its
# checksum, which the app verifies at start).
RUN python -m evidence.extraction.build && chmod a-w data/anakinra.duckdb data/anakinra.duckdb.sha256

# The dataset store (a panel's checked uploads, shared by link): mount one volume here for every
# replica (compose.yaml, deploy/kubernetes.yaml); ANAKINRA_DATASETS=off keeps uploads in the
# browser session only.
RUN install -d -o app -g app /datasets
ENV ANAKINRA_DATASETS=/datasets

USER app
EXPOSE 8501
# The script health check runs app.py: it fails (503) when the server is up but has no data to
# serve, which /_stcore/health (the process answers) cannot tell.
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/script-health-check', timeout=14).status == 200 else 1)"

# The command of every replica (compose.yaml, deploy/kubernetes.yaml, make serve).
CMD ["streamlit", "run", "app.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
