"""The analytics metric layer: DuckDB views over the lake, and every metric's SQL, in one place.

Views: ``generations`` (latest outcome per request), ``decisions``, ``videos``. Each metric
is a named, parameterised query with its definition and grain in the comment above it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from datasets.schemas import TABLES
from kinora.stores.lake import Lake

# Latest outcome per request: a rerun re-screens blocked requests, and the newest row wins.
_GENERATIONS_VIEW = """
CREATE OR REPLACE VIEW generations AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY request_id ORDER BY ts DESC) AS rn FROM generations_raw
) WHERE rn = 1
"""

# Campaign funnel. Grain: one row per campaign.
# requested: requests with an outcome; blocked_consent / blocked_rights: refused before
# generation (or consent withdrawn before publish); failed: generation or stamping failed;
# generated: a clip came out of the model; published: in the catalog.
CAMPAIGN_FUNNEL = """
SELECT coalesce(campaign_id, '(api)') AS campaign,
       count(*) AS requested,
       count(*) FILTER (WHERE status = 'blocked_consent') AS blocked_consent,
       count(*) FILTER (WHERE status = 'blocked_rights') AS blocked_rights,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE generate_s IS NOT NULL) AS generated,
       count(*) FILTER (WHERE status = 'published') AS published,
       min(ts) AS first_seen, max(ts) AS last_seen
FROM generations
WHERE ts >= $start AND ts < $end AND (len($campaigns) = 0 OR list_contains($campaigns, coalesce(campaign_id, '(api)')))
GROUP BY 1 ORDER BY last_seen DESC
"""

# Mean seconds per stage for published requests. Grain: one row per campaign.
STAGE_SECONDS = """
SELECT coalesce(campaign_id, '(api)') AS campaign,
       avg(consent_s) AS consent_s, avg(rights_s) AS rights_s, avg(generate_s) AS generate_s,
       avg(stamp_s) AS stamp_s, avg(publish_s) AS publish_s
FROM generations
WHERE status = 'published' AND ts >= $start AND ts < $end
  AND (len($campaigns) = 0 OR list_contains($campaigns, coalesce(campaign_id, '(api)')))
GROUP BY 1 ORDER BY 1
"""

# Refusals with their reasons. Grain: one row per refused request.
REFUSALS = """
SELECT coalesce(campaign_id, '(api)') AS campaign, request_id, status, reason, ts
FROM generations
WHERE status IN ('blocked_consent', 'blocked_rights', 'failed') AND ts >= $start AND ts < $end
  AND (len($campaigns) = 0 OR list_contains($campaigns, coalesce(campaign_id, '(api)')))
ORDER BY ts DESC
"""

# Published videos. Grain: one row per video.
PUBLISHED_VIDEOS = """
SELECT video_id, coalesce(campaign_id, '(api)') AS campaign, creator_id, prompt, duration_ms / 1000.0 AS duration_s,
       width || 'x' || height AS resolution, model_family, model_version, c2pa_state, cameo_count, published_at
FROM videos
WHERE published_at >= $start AND published_at < $end
  AND (len($campaigns) = 0 OR list_contains($campaigns, coalesce(campaign_id, '(api)')))
ORDER BY published_at DESC
"""

CAMPAIGNS = "SELECT DISTINCT coalesce(campaign_id, '(api)') AS campaign FROM generations ORDER BY 1"
DATE_RANGE = "SELECT min(ts)::DATE AS first_day, max(ts)::DATE AS last_day FROM generations"


def connect(lake_root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's tables as views (empty tables when nothing is written yet)."""
    con = duckdb.connect(":memory:")
    lake = Lake(lake_root)
    for table, schema in TABLES.items():
        name = "generations_raw" if table == "generations" else table
        if lake.files(table):
            glob = lake.glob(table).replace("'", "''")  # DDL takes no parameters: quote the literal
            con.execute(
                f"CREATE VIEW {name} AS SELECT * EXCLUDE (date) "
                f"FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
            )
        else:
            con.register(f"{name}_empty", schema.empty_table())
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {name}_empty")
    con.execute(_GENERATIONS_VIEW)
    return con


def query(con: duckdb.DuckDBPyConnection, sql: str, **params) -> pl.DataFrame:
    """Run one metric query with named parameters and return a Polars frame."""
    return con.sql(sql, params=params).pl()
