"""Tables of the operational store (SQLAlchemy Core).

This is the current shape; migrations under ``migrations/versions`` produce it. Timestamps
are timezone-aware UTC. JSON columns hold small structured values (aliases, parameters).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TS = sa.DateTime(timezone=True)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("handle", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

follows = sa.Table(
    "follows",
    metadata,
    sa.Column("follower_id", sa.String(40), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("followee_id", sa.String(40), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("created_at", TS, nullable=False),
)

cameos = sa.Table(
    "cameos",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("handle", sa.String(64), nullable=False, unique=True),
    sa.Column("owner_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # person | pet | object | character
    sa.Column("permission", sa.String(16), nullable=False),  # only_me | approved | mutuals | everyone
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("restrictions", sa.JSON, nullable=False),  # free-text restrictions, screened against prompts
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS, nullable=True),
    # Owner approves each video before it is published.
    sa.Column("require_approval", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("attestation", sa.JSON, nullable=True),  # the verifier's signed attestation that made it verified
    sa.Column("media", sa.JSON, nullable=False, server_default="[]"),  # [{kind, key}] encrypted reference media
    sa.Column("deleted_at", TS, nullable=True),  # deleted by its owner: media erased, handle kept for the ledger
)

cameo_challenges = sa.Table(
    "cameo_challenges",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("handle", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("digits", sa.String(16), nullable=False),
    sa.Column("head_turns", sa.JSON, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("used_at", TS, nullable=True),  # single use: set once, in the same transaction as the cameo
)

video_cameo_uses = sa.Table(
    "video_cameo_uses",
    metadata,
    sa.Column("video_id", sa.String(40), primary_key=True),
    sa.Column("cameo_id", sa.String(40), sa.ForeignKey("cameos.id"), primary_key=True, index=True),
    sa.Column("job_id", sa.String(40), nullable=False),
    sa.Column("requester_id", sa.String(40), nullable=False),
    # active: published under valid consent | pending: awaiting the owner's approval (a draft)
    # removed: the owner removed it | withdrawn: consent stopped holding (sweep, revocation)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("decided_at", TS, nullable=True),
)

cameo_approvals = sa.Table(
    "cameo_approvals",
    metadata,
    sa.Column("cameo_id", sa.String(40), sa.ForeignKey("cameos.id"), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("created_at", TS, nullable=False),
)

consent_ledger = sa.Table(
    "consent_ledger",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", TS, nullable=False),
    sa.Column("cameo_id", sa.String(40), sa.ForeignKey("cameos.id"), nullable=False),
    sa.Column("actor_id", sa.String(40), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # grant | change | revoke | use | ...
    sa.Column("detail", sa.JSON, nullable=False),
    # Hash chain over every entry in seq order, each entry hash signed (kinora.trust.ledger).
    sa.Column("prev_hash", sa.String(64), nullable=True),
    sa.Column("entry_hash", sa.String(64), nullable=True),
    sa.Column("signature", sa.String(100), nullable=True),
    sa.Column("key_id", sa.String(16), nullable=True),
)

ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # always 1
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(100), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

rights_holders = sa.Table(
    "rights_holders",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", TS, nullable=False),
    # what the holder's works marked "default" get: blocked | allowed | default (the platform regime)
    sa.Column("default_policy", sa.String(16), nullable=False, server_default="default"),
)

rights_works = sa.Table(
    "rights_works",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("holder_id", sa.String(40), sa.ForeignKey("rights_holders.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("aliases", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("policy", sa.String(16), nullable=False),  # blocked | allowed | default (the holder's, else the regime)
    sa.Column("terms", sa.JSON, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint("holder_id", "name", name="uq_rights_works_holder_name"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("campaign_id", sa.String(80), nullable=True, index=True),
    sa.Column("requester_id", sa.String(40), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),  # width, height, duration_s, fps, seed, cameos, ...
    sa.Column("status", sa.String(16), nullable=False, index=True),  # queued|running|succeeded|failed|blocked|cancelled
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("video_id", sa.String(40), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # API jobs only: the key that submitted it, and the lease of the ingress replica working on it.
    # A replica that dies leaves its lease to expire; another replica then claims the job.
    sa.Column("api_key_id", sa.String(40), nullable=True, index=True),
    sa.Column("lease_owner", sa.String(80), nullable=True),
    sa.Column("lease_expires_at", TS, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the secret; the secret is never stored
    sa.Column("prefix", sa.String(16), nullable=False),  # first characters, to recognise a key in lists and logs
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("per_day", sa.Integer, nullable=False),
    sa.Column("max_concurrent", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("revoked_at", TS, nullable=True),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id"), nullable=False, index=True),
    sa.Column("stage", sa.String(16), nullable=False),  # consent | rights | publish
    sa.Column("outcome", sa.String(16), nullable=False),  # allow | block | allow_with_terms
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("ts", TS, nullable=False),
)

videos = sa.Table(
    "videos",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id"), nullable=False, unique=True),
    sa.Column("creator_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("campaign_id", sa.String(80), nullable=True),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("fps", sa.Integer, nullable=False),
    sa.Column("model_family", sa.String(32), nullable=False),
    sa.Column("model_version", sa.String(120), nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("media_key", sa.String(300), nullable=False),
    sa.Column("thumbnail_key", sa.String(300), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("provenance", sa.JSON, nullable=False),  # c2pa state, claim generator, visible mark
    sa.Column("cameo_ids", sa.JSON, nullable=False),
    sa.Column("published_at", TS, nullable=True),
    sa.Column("unpublished_at", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("unpublished_reason", sa.Text, nullable=True),
    sa.Column("remix_of", sa.String(40), nullable=True, index=True),  # the parent video of a remix
    sa.Column("content_id", sa.BigInteger, nullable=True, index=True),  # invisible watermark payload (48 bits)
)

# One row per re-screen of the published catalog against a registry version (migration 0005).
rights_rescreens = sa.Table(
    "rights_rescreens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("registry_digest", sa.String(64), nullable=False, index=True),
    sa.Column("trigger", sa.String(32), nullable=False),  # schedule | import | manual
    sa.Column("started_at", TS, nullable=False),
    sa.Column("finished_at", TS, nullable=True),
    sa.Column("checked", sa.Integer, nullable=False, server_default="0"),
    sa.Column("taken_down", sa.Integer, nullable=False, server_default="0"),
)

# Indexes the consent checks and the feed rely on at scale (migration 0004).
sa.Index("ix_consent_ledger_cameo_action_seq", consent_ledger.c.cameo_id, consent_ledger.c.action, consent_ledger.c.seq)
sa.Index("ix_consent_ledger_actor_id", consent_ledger.c.actor_id)
sa.Index("ix_videos_published_at_id", videos.c.published_at, videos.c.id)

# Engagement event ids already ingested (migration 0006): deduplication across batches and retries.
event_ids = sa.Table(
    "event_ids",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("batch_id", sa.String(40), nullable=False, index=True),
    sa.Column("ingested_at", TS, nullable=False),
)

# Videos a user hid or reported (migration 0007): written with the event, read by every feed request.
hidden_videos = sa.Table(
    "hidden_videos",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("video_id", sa.String(64), primary_key=True),
    sa.Column("hidden_at", TS, nullable=False),
)
