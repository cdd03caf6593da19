# One image for the web and worker services of docker-compose.yml (the services profile).
# Debian 13 (trixie): its postgresql-client is 17, the major of docker-compose.yml's database, so
# `manage.py backup` (pg_dump) and `restore` (pg_restore) match the server.
FROM python:3.11-slim-trixie

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ENCLAVE_VAR_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000

# Tesseract reads scanned PDF pages and images (OCR); pg_dump and pg_restore back up PostgreSQL.
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, so code changes do not reinstall them. torch==2.13.0 from the default
# index includes CUDA, which GPU workers (EMBEDDING_DEVICE=cuda) need.
COPY pyproject.toml README.md ./
RUN mkdir assistant ingestion && touch assistant/__init__.py ingestion/__init__.py \
    && pip install -e . && rm -rf assistant ingestion
COPY . .
# A new named volume takes its owner from the image's folder: owned here, the app user writes it.
RUN useradd --system --home /data enclave && mkdir -p /data /media /backups /metrics \
    && chown enclave /data /media /backups /metrics
USER enclave
EXPOSE 8000
CMD ["gunicorn", "-c", "assistant/gunicorn_conf.py", "assistant.wsgi"]
