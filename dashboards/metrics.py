"""The analytics metric layer: DuckDB views over the lake, and every metric's SQL, in one place.

Views: ``generations`` (latest outcome per request), ``decisions``, ``videos``, ``events`` (one
row per ``event_id``: a retried batch can write an event twice, readers keep the first). Each
metric is a named, parameterised query with its definition and grain in the comment above it.
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

# -- feed engagement (issue #8 builds its pages on these) -------------------------------------------
_EVENTS_VIEW = """
CREATE OR REPLACE VIEW events AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY ts) AS rn FROM events_raw
) WHERE rn = 1
"""

# Feed engagement per UTC day. Grain: one row per day.
# active_users: distinct users with any event; sessions: distinct feed requests (impressions'
# request_id); watch_s: seconds watched (views); completion_rate: views that watched >= 90% of a
# video whose length the lake knows, over such views; like/share/remix/comment rates: per view.
FEED_DAILY = """
WITH e AS (SELECT * FROM events WHERE ts >= $start AND ts < $end),
     v AS (SELECT e.*, videos.duration_ms FROM e LEFT JOIN videos USING (video_id) WHERE e.event_type = 'view')
SELECT d.day, d.active_users, d.sessions, d.impressions, d.views, d.watch_s,
       c.completed / nullif(c.with_duration, 0) AS completion_rate,
       d.likes / nullif(d.views, 0) AS like_rate, d.shares / nullif(d.views, 0) AS share_rate,
       d.remixes / nullif(d.views, 0) AS remix_rate, d.comments / nullif(d.views, 0) AS comment_rate
FROM (SELECT ts::DATE AS day, count(DISTINCT user_id) AS active_users,
             count(DISTINCT request_id) FILTER (WHERE event_type = 'impression') AS sessions,
             count(*) FILTER (WHERE event_type = 'impression') AS impressions,
             count(*) FILTER (WHERE event_type = 'view') AS views,
             coalesce(sum(watch_ms) FILTER (WHERE event_type = 'view'), 0) / 1000.0 AS watch_s,
             count(*) FILTER (WHERE event_type = 'like') AS likes, count(*) FILTER (WHERE event_type = 'share') AS shares,
             count(*) FILTER (WHERE event_type = 'remix') AS remixes,
             count(*) FILTER (WHERE event_type = 'comment') AS comments
      FROM e GROUP BY 1) d
LEFT JOIN (SELECT ts::DATE AS day, count(*) FILTER (WHERE duration_ms IS NOT NULL) AS with_duration,
                  count(*) FILTER (WHERE watch_ms >= 0.9 * duration_ms) AS completed
           FROM v GROUP BY 1) c USING (day)
ORDER BY d.day
"""

# Daily, weekly and monthly active users as of each day of the window. Grain: one row per day.
# dau: users active that day; wau / mau: users active in the 7 / 30 days ending that day.
ACTIVE_USERS = """
WITH days AS (SELECT unnest(generate_series($start::DATE, ($end::TIMESTAMPTZ - INTERVAL 1 DAY)::DATE, INTERVAL 1 DAY))::DATE AS day),
     ud AS (SELECT DISTINCT user_id, ts::DATE AS day FROM events
            WHERE ts >= $start::TIMESTAMPTZ - INTERVAL 29 DAY AND ts < $end)
SELECT days.day,
       count(DISTINCT ud.user_id) FILTER (WHERE ud.day = days.day) AS dau,
       count(DISTINCT ud.user_id) FILTER (WHERE ud.day > days.day - 7) AS wau,
       count(DISTINCT ud.user_id) AS mau
FROM days LEFT JOIN ud ON ud.day <= days.day AND ud.day > days.day - 30
GROUP BY 1 ORDER BY 1
"""

# Engagement by feed position. Grain: one row per position. Each view, like, share or remix is
# attributed to the latest impression of the same user and video at or before it (as the ranker's
# labels are); view_rate, like_rate: per impression at that position.
BY_POSITION = """
WITH imp AS (SELECT user_id, video_id, ts, position FROM events
             WHERE event_type = 'impression' AND ts >= $start AND ts < $end),
     act AS (SELECT user_id, video_id, ts, event_type FROM events
             WHERE event_type IN ('view', 'like', 'share', 'remix') AND ts >= $start AND ts < $end),
     attributed AS (SELECT imp.position, act.event_type FROM act ASOF JOIN imp
                    ON act.user_id = imp.user_id AND act.video_id = imp.video_id AND act.ts >= imp.ts)
SELECT i.position, i.impressions,
       coalesce(a.views, 0) / i.impressions AS view_rate, coalesce(a.likes, 0) / i.impressions AS like_rate,
       coalesce(a.shares, 0) / i.impressions AS share_rate, coalesce(a.remixes, 0) / i.impressions AS remix_rate
FROM (SELECT position, count(*) AS impressions FROM imp GROUP BY 1) i
LEFT JOIN (SELECT position, count(*) FILTER (WHERE event_type = 'view') AS views,
                  count(*) FILTER (WHERE event_type = 'like') AS likes,
                  count(*) FILTER (WHERE event_type = 'share') AS shares,
                  count(*) FILTER (WHERE event_type = 'remix') AS remixes
           FROM attributed GROUP BY 1) a USING (position)
ORDER BY i.position
"""

# Weekly retention. Grain: one row per (cohort week, weeks since). cohort: the ISO week (Monday)
# of a user's first event ever; retained: share of the cohort with an event in week cohort + k.
RETENTION_WEEKLY = """
WITH first AS (SELECT user_id, date_trunc('week', min(ts))::DATE AS cohort FROM events GROUP BY 1),
     active AS (SELECT DISTINCT user_id, date_trunc('week', ts)::DATE AS week FROM events),
     sizes AS (SELECT cohort, count(*) AS users FROM first GROUP BY 1)
SELECT f.cohort, (datediff('day', f.cohort, a.week) // 7)::INTEGER AS weeks_since, s.users AS cohort_users,
       count(DISTINCT a.user_id) AS active_users, count(DISTINCT a.user_id) / s.users AS retained
FROM first f JOIN active a USING (user_id) JOIN sizes s USING (cohort)
WHERE f.cohort >= $start::DATE - INTERVAL 6 DAY AND f.cohort < $end
GROUP BY 1, 2, 3 ORDER BY 1, 2
"""

CAMPAIGNS = "SELECT DISTINCT coalesce(campaign_id, '(api)') AS campaign FROM generations ORDER BY 1"
DATE_RANGE = "SELECT min(ts)::DATE AS first_day, max(ts)::DATE AS last_day FROM generations"


def connect(lake_root: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's tables as views (empty tables when nothing is written yet)."""
    con = duckdb.connect(":memory:")
    lake = Lake(lake_root)
    for table, schema in TABLES.items():
        name = {"generations": "generations_raw", "events": "events_raw"}.get(table, table)
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
    con.execute(_EVENTS_VIEW)
    return con


def query(con: duckdb.DuckDBPyConnection, sql: str, **params) -> pl.DataFrame:
    """Run one metric query with named parameters and return a Polars frame."""
    return con.sql(sql, params=params).pl()
