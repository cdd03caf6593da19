# One image for the web and worker services of docker-compose.yml (the services profile).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ENCLAVE_VAR_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000

# Tesseract reads scanned PDF pages and images (OCR).
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, so code changes do not reinstall them. torch==2.13.0 from the default
# index includes CUDA, which GPU workers (EMBEDDING_DEVICE=cuda) need.
COPY pyproject.toml README.md ./
RUN mkdir assistant ingestion && touch assistant/__init__.py ingestion/__init__.py \
    && pip install -e . && rm -rf assistant ingestion
COPY . .
RUN useradd --system --home /data enclave && mkdir -p /data && chown enclave /data
USER enclave
EXPOSE 8000
CMD ["gunicorn", "-c", "assistant/gunicorn_conf.py", "assistant.wsgi"]
