"""All settings in one object, read from the environment and an optional `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[3]

ReasoningFormat = Literal["auto", "none"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=(REPO_ROOT / ".env", ".env"), extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000

    # The one-model shorthand: loaded at start-up and kept (empty: none, with MODELS_DIR/MODELS_FILE).
    chat_model_path: Path | None = REPO_ROOT / "models" / "SmolLM2-135M-Instruct"
    chat_model_name: str = "SmolLM2-135M-Instruct"
    embedding_model_path: Path | None = REPO_ROOT / "models" / "all-MiniLM-L6-v2"
    embedding_model_name: str = "all-MiniLM-L6-v2"
    # More models, loaded when a request names one: a folder scanned for Hugging Face folders and
    # .gguf files, and/or a YAML file listing them with their options (docs/settings.md).
    models_dir: Path | None = None
    models_file: Path | None = None
    # How long such a model stays loaded once idle, in Ollama's syntax: "5m", "1h", seconds;
    # 0 unloads it after each request, -1 keeps it. A request's `keep_alive` overrides it.
    keep_alive: str = "5m"
    # The memory the loaded models' weights may take (GiB); past it the least recently used idle
    # one is unloaded first. 0: half the RAM (CPU) or 80 % of the GPU's memory.
    models_memory_gb: float = Field(default=0, ge=0)

    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attention: Literal["auto", "batch_invariant", "sdpa", "eager"] = "auto"
    # Weight-only quantisation of the linear layers (CPU kernels); auto: int4 where it is lossless
    # (bfloat16 CPUs), fp16 weights on x86 CPUs computing in float32 (AVX2 only), none on GPUs.
    quantization: Literal["auto", "none", "int8", "int4", "fp16"] = "auto"
    # With int8/int4: keep the dense weights too and prefill prompts with them (2 more bytes per
    # parameter). auto: only on CPUs with AMX, where they prefill several times faster and their
    # products run in fixed-shape pieces (a row's numbers the same in any batch).
    dense_prefill: Literal["auto", "true", "false"] = "auto"
    # accelerate's placement, e.g. "auto" to split a model too large for one GPU over several.
    device_map: str | None = None
    # A lean forward for Llama-family models (same tokens, less per-step overhead).
    fast_path: bool = True
    # Caps the context below the model's own limit (0: use the model's).
    max_model_len: int = Field(default=0, ge=0)
    # As llama-server's --reasoning-format: auto sends a thinking model's <think>…</think> apart
    # from the answer (reasoning_content), none leaves it in content.
    reasoning_format: ReasoningFormat = "auto"

    api_key: str | None = None
    # Who may use the server (docs/accounts.md): none (one local user, no sign-in), password
    # (accounts, sessions, personal API keys), header (a signed-in user named by an SSO proxy).
    auth: Literal["none", "password", "header"] = "none"
    # Where the SQLite database (and what else the server keeps) lives, unless DATABASE_URL is set.
    data_dir: Path = REPO_ROOT / "data"
    # postgresql://user:password@host/db for several replicas; unset: SQLite under DATA_DIR.
    database_url: str | None = None
    # Addresses or networks (comma-separated) of the proxies whose X-Forwarded-For/-Proto and,
    # with AUTH=header, X-Forwarded-User/-Email are believed.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # A browser session ends this long after sign-in.
    session_ttl_hours: float = Field(default=168, gt=0)
    # What each user may keep on the server (conversations, presets, files, documents), in MiB;
    # a write past it is answered 413.
    user_storage_mb: int = Field(default=1024, ge=0)
    # With API_KEY set, /metrics needs the key too unless this is true (say, for a scraper
    # on a private network); /health is always public.
    metrics_public: bool = False
    # With accounts: a `user` label on per-user request and token counters in /metrics (names
    # from the users table), for a team's dashboard.
    metrics_per_user: bool = False
    # With accounts: each user's default limits (an admin may set others per account); 0: none.
    # Requests per minute are counted per replica; tokens (prompt + completion) per UTC day
    # across replicas.
    user_rpm: int = Field(default=0, ge=0)
    user_tokens_per_day: int = Field(default=0, ge=0)
    cors_origins: Annotated[list[str], NoDecode] = [
        "http://127.0.0.1:5173",
        "http://localhost:5173",
    ]
    frontend_dist: Path = REPO_ROOT / "frontend" / "dist"
    max_request_bytes: int = 4 * 1024 * 1024
    # Slow or silent clients: a request's headers and body must arrive within this many seconds
    # of its first byte (or of the connection opening), else the connection is closed.
    request_read_timeout_s: float = Field(default=30.0, gt=0)
    # Open connections at most; one more is answered 503 and closed (each costs a descriptor).
    max_connections: int = Field(default=512, ge=1)

    # Engine: continuous batching limits.
    max_num_seqs: int = Field(default=16, ge=1)
    max_waiting: int = Field(default=64, ge=0)
    max_num_batched_tokens: int = Field(default=512, ge=16)
    # The KV cache's memory (GiB); 0 sizes it for the machine: a quarter of RAM on a CPU (8 GiB at
    # most), half the free GPU memory after loading. Memory is used as tokens arrive.
    kv_cache_memory_gb: float = Field(default=0, ge=0)
    # Reuse the keys of prompt prefixes seen before (earlier turns, shared system prompts).
    enable_prefix_caching: bool = True
    # Speculative decoding: off, ngram (prompt lookup, every request without penalties or
    # logprobs), draft (SPECULATIVE_DRAFT_MODEL proposes), auto (the draft model if one is set,
    # else ngram, where it pays: small batches, measured acceptance). Off by default:
    # docs/benchmarks-speculative.md.
    speculative: Literal["off", "ngram", "draft", "auto"] = "off"
    # A small model with the chat model's tokenizer (a Hugging Face folder or a .gguf file) that
    # proposes CHAT_MODEL_PATH's tokens with SPECULATIVE=draft or auto.
    speculative_draft_model: Path | None = None
    queue_timeout_s: float = Field(default=120.0, gt=0)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    sse_ping_s: float = Field(default=15.0, gt=0)
    num_threads: int = Field(default=0, ge=0)

    # Responses API: how many responses (store: true) are kept for previous_response_id and
    # GET /v1/responses/{id}, in this process; past it the oldest are forgotten.
    max_stored_responses: int = Field(default=1000, ge=0)

    # A streamed chat (or text) completion sent with X-Conversation-Id and X-Message-Id runs on
    # this long after its client left, kept for GET /v1/stream/{conversation}/{message} (a page
    # reloaded mid-answer); 0: a client leaving stops its answer. At most this many are kept, each
    # up to this many bytes of events; past either limit an answer streams as without the headers.
    stream_resume_s: float = Field(default=120.0, ge=0)
    max_resumable_streams: int = Field(default=64, ge=0)
    stream_resume_max_bytes: int = Field(default=8 * 1024 * 1024, ge=0)

    # Embeddings: requests that may wait for the embedding model (more get a 429), and the
    # tokens one request may send in all (more get a 400).
    embedding_max_waiting: int = Field(default=64, ge=1)
    max_embedding_tokens: int = Field(default=32768, ge=1)

    @property
    def base_url(self) -> str:
        """The API's URL for a client on this machine (`python -m app.client`, the demo): a server
        listening on every interface is reached through the loopback."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/v1"

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("dense_prefill", mode="before")
    @classmethod
    def _bool_is_text(cls, value: object) -> object:
        return str(value).lower() if isinstance(value, bool) else value

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive_is_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value

    @field_validator(
        "api_key",
        "chat_model_path",
        "embedding_model_path",
        "models_dir",
        "models_file",
        "device_map",
        "database_url",
        "speculative_draft_model",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None


@lru_cache
def get_settings() -> Settings:
    return Settings()
