"""The analytics semantic layer's SQL, all of it, in one place (DuckDB).

Three layers, each built from the one below:

1. **Inputs**: the lake's tables as written (``*_raw`` views over the Parquet partitions) and the
   catalog snapshot (``cat_*`` views over the files :mod:`kinora.stores.catalog_export` writes).
2. **Rollups**, materialised by :func:`dashboards.layer.refresh` one UTC day at a time and only
   for the days whose input files changed: per user and day (``user_day``), per video and day
   (``video_day``), per feed position, ranker version and day (``position_day``), and compacted
   copies of the small tables (one file per day instead of one per writer and batch). Events are
   deduplicated on ``event_id`` here, once: a retried batch writes its events again into the same
   day's partition (same ``ts``), so a day's files hold every copy of an event.
3. **Derived tables**, recomputed from the rollups on every refresh (they are small):
   ``user_cohort``, ``feed_daily``, ``active_users``, ``retention``.

The pages' queries (bottom of this module, grouped by page in :data:`PAGES`) read only layers 2
and 3 and the catalog snapshot, which is why a page stays fast at 10^8 events: the expensive
scans happen once per day of data, in the refresh, not once per page view. Every metric is
documented in :data:`METRICS` (name, definition, grain); the README lists them.

Parameters: ``$start``/``$end`` (TIMESTAMPTZ, end exclusive), ``$campaigns``, ``$versions``
(ranker versions), ``$cohorts`` (cohort weeks, DATE); an empty list means "all".
"""

from __future__ import annotations

from dataclasses import dataclass

# -- 2. rollups: run by the refresh over the temp tables it fills for one day ---------------------
# day_events: the day's events, deduplicated; prev_impressions: the previous day's impressions
# (for attribution across midnight); day_requests: feed_requests of both days; video_dim.

DAY_EVENTS = """
CREATE OR REPLACE TEMP TABLE day_events AS
SELECT * EXCLUDE (rn, date) FROM (
    SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY batch_id) AS rn
    FROM read_parquet($files, hive_partitioning = true, union_by_name = true)
) WHERE rn = 1
"""

PREV_IMPRESSIONS = """
CREATE OR REPLACE TEMP TABLE prev_impressions AS
SELECT DISTINCT ON (event_id) user_id, video_id, ts, position, request_id
FROM read_parquet($files, hive_partitioning = true, union_by_name = true)
WHERE event_type = 'impression'
"""

# Grain: one row per (day, user). sessions: distinct feed requests the user's impressions came
# from; timed_views: views of videos whose length is known; completed_views: of those, views that
# watched at least $completion_share of the video.
USER_DAY = """
SELECT e.ts::DATE AS day, e.user_id,
       count(*) AS events,
       count(*) FILTER (WHERE e.event_type = 'impression') AS impressions,
       count(DISTINCT e.request_id) FILTER (WHERE e.event_type = 'impression') AS sessions,
       count(*) FILTER (WHERE e.event_type = 'view') AS views,
       coalesce(sum(e.watch_ms) FILTER (WHERE e.event_type = 'view'), 0)::BIGINT AS watch_ms,
       count(*) FILTER (WHERE e.event_type = 'view' AND v.duration_ms IS NOT NULL) AS timed_views,
       count(*) FILTER (WHERE e.event_type = 'view' AND e.watch_ms >= $completion_share * v.duration_ms) AS completed_views,
       count(*) FILTER (WHERE e.event_type = 'like') AS likes,
       count(*) FILTER (WHERE e.event_type = 'share') AS shares,
       count(*) FILTER (WHERE e.event_type = 'remix') AS remixes,
       count(*) FILTER (WHERE e.event_type = 'comment') AS comments,
       count(*) FILTER (WHERE e.event_type = 'follow_creator') AS follows,
       count(*) FILTER (WHERE e.event_type = 'skip') AS skips,
       count(*) FILTER (WHERE e.event_type = 'hide') AS hides,
       count(*) FILTER (WHERE e.event_type = 'report') AS reports
FROM day_events e LEFT JOIN video_dim v ON v.video_id = e.video_id
GROUP BY 1, 2
"""

# Grain: one row per (day, video). viewers: distinct users who viewed it that day.
VIDEO_DAY = """
SELECT e.ts::DATE AS day, e.video_id,
       count(*) FILTER (WHERE e.event_type = 'impression') AS impressions,
       count(DISTINCT e.user_id) FILTER (WHERE e.event_type = 'view') AS viewers,
       count(*) FILTER (WHERE e.event_type = 'view') AS views,
       coalesce(sum(e.watch_ms) FILTER (WHERE e.event_type = 'view'), 0)::BIGINT AS watch_ms,
       count(*) FILTER (WHERE e.event_type = 'view' AND v.duration_ms IS NOT NULL) AS timed_views,
       count(*) FILTER (WHERE e.event_type = 'view' AND e.watch_ms >= $completion_share * v.duration_ms) AS completed_views,
       count(*) FILTER (WHERE e.event_type = 'like') AS likes,
       count(*) FILTER (WHERE e.event_type = 'share') AS shares,
       count(*) FILTER (WHERE e.event_type = 'remix') AS remixes,
       count(*) FILTER (WHERE e.event_type = 'comment') AS comments,
       count(*) FILTER (WHERE e.event_type IN ('hide', 'report')) AS negatives
FROM day_events e LEFT JOIN video_dim v ON v.video_id = e.video_id
GROUP BY 1, 2
"""

# Grain: one row per (day, position, ranker version). Impressions count on their own day. Each
# view, like, share, remix, comment, hide or report counts on its day, under the position and
# version of the latest impression of the same user and video at or before it, on the same or
# the previous UTC day (the attribution window); actions with no such impression are not counted.
# model_version: the ranker version that ordered the page; '(by freshness)' when Kinora served it
# with no model in production; '(not ranked by Kinora)' for impressions an app logged itself.
POSITION_DAY = """
WITH imp AS (SELECT user_id, video_id, ts, position, request_id FROM day_events WHERE event_type = 'impression'),
     seen AS (SELECT * FROM imp UNION ALL SELECT user_id, video_id, ts, position, request_id FROM prev_impressions),
     act AS (SELECT user_id, video_id, ts, event_type, watch_ms FROM day_events
             WHERE event_type IN ('view', 'like', 'share', 'remix', 'comment', 'hide', 'report')),
     att AS (SELECT act.ts, seen.position, seen.request_id, act.event_type, act.watch_ms FROM act ASOF JOIN seen
             ON act.user_id = seen.user_id AND act.video_id = seen.video_id AND act.ts >= seen.ts),
     counted AS (SELECT ts, position, request_id, 1 AS impressions, NULL::VARCHAR AS event_type, NULL::BIGINT AS watch_ms FROM imp
                 UNION ALL SELECT ts, position, request_id, 0, event_type, watch_ms FROM att),
     req AS (SELECT request_id, any_value(model_version) AS model_version FROM day_requests GROUP BY 1)
SELECT c.ts::DATE AS day, c.position,
       CASE WHEN q.request_id IS NULL THEN '(not ranked by Kinora)' ELSE coalesce(q.model_version, '(by freshness)') END
           AS model_version,
       sum(c.impressions)::BIGINT AS impressions,
       count(*) FILTER (WHERE c.event_type = 'view') AS views,
       coalesce(sum(c.watch_ms) FILTER (WHERE c.event_type = 'view'), 0)::BIGINT AS watch_ms,
       count(*) FILTER (WHERE c.event_type = 'like') AS likes,
       count(*) FILTER (WHERE c.event_type = 'share') AS shares,
       count(*) FILTER (WHERE c.event_type = 'remix') AS remixes,
       count(*) FILTER (WHERE c.event_type = 'comment') AS comments,
       count(*) FILTER (WHERE c.event_type IN ('hide', 'report')) AS negatives
FROM counted c LEFT JOIN req q USING (request_id)
GROUP BY ALL
"""

ROLLUPS = {"user_day": USER_DAY, "video_day": VIDEO_DAY, "position_day": POSITION_DAY}
"""Rollups of the events, one file per day each."""

COMPACTED = ("generations", "decisions", "verifications", "feed_requests", "videos")
"""Lake tables copied one file per day (their rows unchanged) for the pages to scan quickly."""

# -- 3. derived tables: recomputed from the rollups on every refresh ------------------------------

# Grain: one row per user. cohort: the ISO week (Monday) of the user's first event.
USER_COHORT = """
SELECT user_id, min(day) AS first_day, date_trunc('week', min(day))::DATE AS cohort FROM user_day GROUP BY 1
"""

# Grain: one row per (day, cohort). Sums of user_day; active_users: users with any event.
FEED_DAILY_TABLE = """
SELECT d.day, c.cohort, count(*) AS active_users, sum(d.sessions)::BIGINT AS sessions,
       sum(d.impressions)::BIGINT AS impressions, sum(d.views)::BIGINT AS views, sum(d.watch_ms)::BIGINT AS watch_ms,
       sum(d.timed_views)::BIGINT AS timed_views, sum(d.completed_views)::BIGINT AS completed_views,
       sum(d.likes)::BIGINT AS likes, sum(d.shares)::BIGINT AS shares, sum(d.remixes)::BIGINT AS remixes,
       sum(d.comments)::BIGINT AS comments, sum(d.follows)::BIGINT AS follows, sum(d.hides)::BIGINT AS hides,
       sum(d.reports)::BIGINT AS reports
FROM user_day d JOIN user_cohort c USING (user_id)
GROUP BY 1, 2
"""

# Grain: one row per (day, cohort). dau / wau / mau: users of the cohort active that day / in the
# 7 / 30 days ending that day. Computed without a join of days against activity: each active day
# a of a user (previous active day p) extends the user's coverage of a w-day window by the days
# [max(a, p + w), a + w); a running sum of +1/-1 steps over the calendar counts covered users.
ACTIVE_USERS_TABLE = """
WITH ud AS (SELECT d.day, c.cohort, lag(d.day) OVER (PARTITION BY d.user_id ORDER BY d.day) AS prev
            FROM user_day d JOIN user_cohort c USING (user_id)),
     w AS (SELECT * FROM (VALUES (1), (7), (30)) t(w)),
     steps AS (SELECT cohort, w, greatest(day, coalesce(prev + w, day)) AS day, 1 AS delta FROM ud, w
               UNION ALL SELECT cohort, w, day + w, -1 FROM ud, w),
     agg AS (SELECT cohort, w, day, sum(delta) AS delta FROM steps GROUP BY ALL),
     cal AS (SELECT unnest(generate_series((SELECT min(day) FROM user_day), (SELECT max(day) FROM user_day),
                                           INTERVAL 1 DAY))::DATE AS day),
     grid AS (SELECT cal.day, c.cohort, w.w FROM cal, (SELECT DISTINCT cohort FROM user_cohort) c, w),
     filled AS (SELECT g.day, g.cohort, g.w,
                       sum(coalesce(a.delta, 0)) OVER (PARTITION BY g.cohort, g.w ORDER BY g.day) AS users
                FROM grid g LEFT JOIN agg a USING (day, cohort, w))
SELECT day, cohort, max(users) FILTER (WHERE w = 1)::BIGINT AS dau, max(users) FILTER (WHERE w = 7)::BIGINT AS wau,
       max(users) FILTER (WHERE w = 30)::BIGINT AS mau
FROM filled WHERE day >= cohort GROUP BY 1, 2
"""

# Grain: one row per (cohort, weeks since). active_users: cohort users with an event that week.
RETENTION_TABLE = """
WITH weeks AS (SELECT DISTINCT user_id, date_trunc('week', day)::DATE AS week FROM user_day),
     sizes AS (SELECT cohort, count(*) AS cohort_users FROM user_cohort GROUP BY 1)
SELECT c.cohort, (datediff('day', c.cohort, w.week) // 7)::INTEGER AS weeks_since, s.cohort_users,
       count(*) AS active_users
FROM weeks w JOIN user_cohort c USING (user_id) JOIN sizes s USING (cohort)
GROUP BY 1, 2, 3
"""

# Grain: one row per remix: the root of its chain (the ancestor without a parent) and its depth
# below it (1: a remix of the root). Walked from the remixes up, so only chains are visited.
REMIX_TREE_TABLE = """
WITH RECURSIVE up(video_id, ancestor, depth, published_at) AS (
    SELECT video_id, remix_of, 1, published_at FROM video_dim WHERE remix_of IS NOT NULL
    UNION ALL
    SELECT up.video_id, v.remix_of, up.depth + 1, up.published_at FROM up JOIN video_dim v ON v.video_id = up.ancestor
    WHERE v.remix_of IS NOT NULL AND up.depth < 100
)
SELECT video_id, arg_max(ancestor, depth) AS root, max(depth) AS depth, any_value(published_at) AS published_at
FROM up GROUP BY video_id
"""

DERIVED = {"user_cohort": USER_COHORT, "feed_daily": FEED_DAILY_TABLE, "active_users": ACTIVE_USERS_TABLE,
           "retention": RETENTION_TABLE, "remix_tree": REMIX_TREE_TABLE}
"""Built in this order (each may read the ones before)."""

# -- semantic views over the layers (created by dashboards.layer.connect) -------------------------

# Every video the analytics know: the catalog snapshot, plus published videos in the lake that the
# snapshot does not have (a lake read without a catalog).
VIDEO_DIM_VIEW = """
CREATE OR REPLACE VIEW video_dim AS
SELECT video_id, creator_id, campaign_id, prompt, duration_ms, model_family, model_version, published_at,
       unpublished_at, unpublished_reason, remix_of, content_id, c2pa_state, cameo_count FROM cat_videos
UNION ALL BY NAME
SELECT DISTINCT ON (video_id) video_id, creator_id, campaign_id, prompt, duration_ms, model_family, model_version,
       published_at, c2pa_state, cameo_count
FROM lake_videos WHERE video_id NOT IN (SELECT video_id FROM cat_videos)
"""

# Latest outcome per request: a rerun re-screens blocked requests, and the newest row wins.
GENERATIONS_VIEW = """
CREATE OR REPLACE VIEW generations AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY request_id ORDER BY ts DESC) AS rn FROM generation_rows
) WHERE rn = 1
"""

# The raw events, deduplicated (for ad-hoc questions; it scans the whole lake, the pages do not).
EVENTS_VIEW = """
CREATE OR REPLACE VIEW events AS
SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY batch_id) AS rn FROM events_raw
) WHERE rn = 1
"""

_CAMPAIGN = "(len($campaigns) = 0 OR list_contains($campaigns, coalesce(campaign_id, '(api)')))"
_COHORT = "(len($cohorts) = 0 OR list_contains($cohorts, cohort))"
_VERSION = "(len($versions) = 0 OR list_contains($versions, model_version))"
_DAYS = "day >= $start::DATE AND day < $end::DATE"

# -- pages ------------------------------------------------------------------------------------

# Overview: headline numbers for the window and for the window of the same length before it.
# Grain: one row per period ('current', 'previous').
OVERVIEW = f"""
WITH p AS (SELECT 'current' AS period, $start::TIMESTAMPTZ AS s, $end::TIMESTAMPTZ AS e
           UNION ALL
           SELECT 'previous', $start::TIMESTAMPTZ - ($end::TIMESTAMPTZ - $start::TIMESTAMPTZ), $start::TIMESTAMPTZ),
     f AS (SELECT p.period, sum(f.active_users) AS user_days, count(DISTINCT f.day) AS days, sum(f.sessions) AS sessions,
                  sum(f.views) AS views, sum(f.watch_ms) AS watch_ms, sum(f.likes) AS likes
           FROM p JOIN feed_daily f ON f.day >= p.s::DATE AND f.day < p.e::DATE AND {_COHORT}
           GROUP BY 1),
     g AS (SELECT p.period, count(*) AS requested, count(*) FILTER (WHERE status = 'published') AS published,
                  count(*) FILTER (WHERE status IN ('blocked_consent', 'blocked_rights')) AS blocked
           FROM p JOIN generations ON ts >= p.s AND ts < p.e AND {_CAMPAIGN} GROUP BY 1),
     v AS (SELECT p.period, count(*) AS lookups FROM p JOIN verifications ON ts >= p.s AND ts < p.e GROUP BY 1)
SELECT p.period, coalesce(f.user_days, 0) / nullif(f.days, 0) AS avg_dau, coalesce(f.sessions, 0)::BIGINT AS sessions,
       coalesce(f.views, 0)::BIGINT AS views, coalesce(f.watch_ms, 0) / 3.6e6 AS watch_hours,
       f.likes / nullif(f.views, 0) AS like_rate, coalesce(g.requested, 0) AS requested,
       coalesce(g.published, 0) AS published, g.blocked / nullif(g.requested, 0) AS blocked_share,
       coalesce(v.lookups, 0) AS verify_lookups
FROM p LEFT JOIN f USING (period) LEFT JOIN g USING (period) LEFT JOIN v USING (period)
ORDER BY p.period
"""

# Feed engagement per UTC day. Grain: one row per day. active_users: users with any event;
# sessions: distinct feed requests; watch_s: seconds watched; completion_rate: completed views
# over timed views; like/share/remix/comment rates: per view.
FEED_DAILY = f"""
SELECT day, sum(active_users)::BIGINT AS active_users, sum(sessions)::BIGINT AS sessions,
       sum(impressions)::BIGINT AS impressions, sum(views)::BIGINT AS views, sum(watch_ms) / 1000.0 AS watch_s,
       sum(completed_views) / nullif(sum(timed_views), 0) AS completion_rate,
       sum(likes) / nullif(sum(views), 0) AS like_rate, sum(shares) / nullif(sum(views), 0) AS share_rate,
       sum(remixes) / nullif(sum(views), 0) AS remix_rate, sum(comments) / nullif(sum(views), 0) AS comment_rate
FROM feed_daily WHERE {_DAYS} AND {_COHORT}
GROUP BY 1 ORDER BY 1
"""

# The same over the whole window. Grain: one row.
FEED_TOTALS = f"""
SELECT sum(sessions)::BIGINT AS sessions, sum(views)::BIGINT AS views, sum(watch_ms) / 3.6e6 AS watch_hours,
       sum(completed_views) / nullif(sum(timed_views), 0) AS completion_rate,
       sum(likes) / nullif(sum(views), 0) AS like_rate, sum(remixes) / nullif(sum(views), 0) AS remix_rate
FROM feed_daily WHERE {_DAYS} AND {_COHORT}
"""

# Daily, weekly and monthly active users. Grain: one row per day of the window that has data.
ACTIVE_USERS = f"""
SELECT day, sum(dau)::BIGINT AS dau, sum(wau)::BIGINT AS wau, sum(mau)::BIGINT AS mau
FROM active_users WHERE {_DAYS} AND {_COHORT}
GROUP BY 1 ORDER BY 1
"""

# Engagement by feed position (attributed as in position_day). Grain: one row per position.
# view_rate, like_rate, share_rate, remix_rate: per impression at that position.
BY_POSITION = f"""
SELECT position, sum(impressions)::BIGINT AS impressions,
       sum(views) / nullif(sum(impressions), 0) AS view_rate, sum(likes) / nullif(sum(impressions), 0) AS like_rate,
       sum(shares) / nullif(sum(impressions), 0) AS share_rate, sum(remixes) / nullif(sum(impressions), 0) AS remix_rate,
       sum(watch_ms) / 1000.0 / nullif(sum(impressions), 0) AS watch_s_per_impression
FROM position_day WHERE {_DAYS} AND {_VERSION}
GROUP BY 1 HAVING sum(impressions) > 0 ORDER BY 1
"""

# Engagement by user cohort over the window. Grain: one row per cohort week.
BY_COHORT = f"""
SELECT cohort, count(DISTINCT day) AS days, sum(active_users)::BIGINT AS user_days,
       sum(sessions) / nullif(sum(active_users), 0) AS sessions_per_user_day,
       sum(views) / nullif(sum(active_users), 0) AS views_per_user_day,
       sum(watch_ms) / 1000.0 / nullif(sum(active_users), 0) AS watch_s_per_user_day,
       sum(likes) / nullif(sum(views), 0) AS like_rate, sum(remixes) / nullif(sum(views), 0) AS remix_rate
FROM feed_daily WHERE {_DAYS} AND {_COHORT}
GROUP BY 1 ORDER BY 1
"""

# Weekly retention. Grain: one row per (cohort week, weeks since). retained: share of the cohort
# with an event in week cohort + weeks_since. Cohorts whose week starts in the window.
RETENTION_WEEKLY = f"""
SELECT cohort, weeks_since, cohort_users, active_users, active_users / cohort_users AS retained
FROM retention WHERE cohort >= $start::DATE - 6 AND cohort < $end::DATE AND {_COHORT}
ORDER BY 1, 2
"""

# Per video over the window: built once per page view as the temp table ``per_video`` (see
# PAGE_SETUP), which both top tables read; they aggregate before they join the catalog, since a
# join of every video-day row to the catalog costs several times the aggregation.
PER_VIDEO = f"""
SELECT video_id, sum(impressions)::BIGINT AS impressions, sum(views)::BIGINT AS views, sum(watch_ms) AS watch_ms,
       sum(likes)::BIGINT AS likes, sum(shares)::BIGINT AS shares, sum(remixes)::BIGINT AS remixes,
       sum(completed_views) AS completed_views, sum(timed_views) AS timed_views
FROM video_day WHERE {_DAYS} GROUP BY video_id
"""

# Top videos by views in the window. Grain: one row per video (at most $top rows).
TOP_VIDEOS = f"""
WITH top AS (SELECT * FROM per_video ORDER BY views DESC, video_id LIMIT $top)
SELECT t.video_id, v.creator_id, v.prompt, t.impressions, t.views, t.watch_ms / 1000.0 AS watch_s, t.likes, t.shares,
       t.remixes, t.completed_views / nullif(t.timed_views, 0) AS completion_rate, v.cameo_count, v.remix_of
FROM top t LEFT JOIN video_dim v USING (video_id)
ORDER BY t.views DESC, t.video_id
"""

# Top creators by views in the window. Grain: one row per creator (at most $top rows).
TOP_CREATORS = f"""
SELECT coalesce(v.creator_id, '(unknown)') AS creator_id, count(*) AS videos_watched, sum(t.views)::BIGINT AS views,
       sum(t.watch_ms) / 1000.0 AS watch_s, sum(t.likes)::BIGINT AS likes, sum(t.remixes)::BIGINT AS remixes,
       sum(t.likes) / nullif(sum(t.views), 0) AS like_rate
FROM per_video t LEFT JOIN video_dim v USING (video_id)
GROUP BY 1 ORDER BY views DESC, creator_id LIMIT $top
"""

# Remix chains: every video without a parent that has remixes, with its chain. Grain: one row per
# root video. depth: longest path below the root; remixes: videos below it published in the window.
REMIX_CHAINS = """
SELECT t.root AS video_id, r.creator_id, r.prompt, max(t.depth) AS depth, count(*) AS remixes
FROM remix_tree t JOIN video_dim r ON r.video_id = t.root
WHERE t.published_at >= $start AND t.published_at < $end
GROUP BY ALL ORDER BY remixes DESC, depth DESC, video_id LIMIT $top
"""

# Cameo usage: each cameo's uses (videos and drafts that put it in), by status, created in the
# window. Grain: one row per cameo.
CAMEO_USAGE = """
SELECT c.handle, c.kind, c.permission, count(u.video_id) AS uses,
       count(u.video_id) FILTER (WHERE u.status = 'active') AS active,
       count(u.video_id) FILTER (WHERE u.status = 'pending') AS pending,
       count(u.video_id) FILTER (WHERE u.status = 'removed') AS removed_by_owner,
       count(u.video_id) FILTER (WHERE u.status = 'withdrawn') AS withdrawn,
       count(DISTINCT u.requester_id) AS requesters,
       c.revoked_at IS NOT NULL AS revoked
FROM cat_cameos c LEFT JOIN cat_cameo_uses u ON u.cameo_id = c.cameo_id AND u.created_at >= $start AND u.created_at < $end
GROUP BY ALL ORDER BY uses DESC, c.handle
"""

# Campaign funnel. Grain: one row per campaign.
# requested: requests with an outcome; blocked_consent / blocked_rights: refused before
# generation (or consent withdrawn before publish); failed: generation or stamping failed;
# generated: a clip came out of the model; published: in the catalog.
CAMPAIGN_FUNNEL = f"""
SELECT coalesce(campaign_id, '(api)') AS campaign,
       count(*) AS requested,
       count(*) FILTER (WHERE status = 'blocked_consent') AS blocked_consent,
       count(*) FILTER (WHERE status = 'blocked_rights') AS blocked_rights,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE generate_s IS NOT NULL) AS generated,
       count(*) FILTER (WHERE status = 'published') AS published,
       min(ts) AS first_seen, max(ts) AS last_seen
FROM generations
WHERE ts >= $start AND ts < $end AND {_CAMPAIGN}
GROUP BY 1 ORDER BY last_seen DESC
"""

# Seconds per stage for published requests: mean and 95th percentile. Grain: one row per campaign.
STAGE_SECONDS = f"""
SELECT coalesce(campaign_id, '(api)') AS campaign, count(*) AS published,
       avg(consent_s) AS consent_s, avg(rights_s) AS rights_s, avg(queue_s) AS queue_s, avg(generate_s) AS generate_s,
       quantile_cont(generate_s, 0.95) AS generate_p95_s, avg(stamp_s) AS stamp_s, avg(mux_s) AS mux_s,
       avg(publish_s) AS publish_s
FROM generations
WHERE status = 'published' AND ts >= $start AND ts < $end AND {_CAMPAIGN}
GROUP BY 1 ORDER BY 1
"""

# Compute spent generating, by device class. Grain: one row per (campaign, device). seconds: sum
# of the pipeline call's seconds over the requests (a batch's call counts for each of its requests).
DEVICE_SECONDS = f"""
SELECT coalesce(campaign_id, '(api)') AS campaign,
       CASE WHEN device LIKE 'cuda%' THEN 'GPU' WHEN device IS NULL THEN '(unknown)' ELSE 'CPU' END AS device,
       count(*) AS clips, sum(generate_s) AS seconds, sum(duration_s) AS video_seconds
FROM generations
WHERE generate_s IS NOT NULL AND ts >= $start AND ts < $end AND {_CAMPAIGN}
GROUP BY 1, 2 ORDER BY 1, 2
"""

# Refusals and failures with their reasons. Grain: one row per refused or failed request.
REFUSALS = f"""
SELECT coalesce(campaign_id, '(api)') AS campaign, request_id, status, reason, ts
FROM generations
WHERE status IN ('blocked_consent', 'blocked_rights', 'failed') AND ts >= $start AND ts < $end AND {_CAMPAIGN}
ORDER BY ts DESC
"""

# Published videos. Grain: one row per video.
PUBLISHED_VIDEOS = f"""
SELECT video_id, coalesce(campaign_id, '(api)') AS campaign, creator_id, prompt, duration_ms / 1000.0 AS duration_s,
       model_family, model_version, c2pa_state, cameo_count, published_at, unpublished_at
FROM video_dim
WHERE published_at >= $start AND published_at < $end AND model_family <> 'simulated' AND {_CAMPAIGN}
ORDER BY published_at DESC
"""

# Trust and safety per day. Grain: one row per day with any of them. consent_blocks /
# rights_blocks: requests refused at that stage; revocations: cameos revoked or deleted (ledger);
# takedowns: videos taken out of circulation; verify_lookups: provenance look-ups.
TRUST_DAILY = """
WITH d AS (SELECT ts::DATE AS day, count(*) FILTER (WHERE stage = 'consent' AND outcome = 'block') AS consent_blocks,
                  count(*) FILTER (WHERE stage = 'rights' AND outcome = 'block') AS rights_blocks
           FROM decisions WHERE ts >= $start AND ts < $end GROUP BY 1),
     r AS (SELECT ts::DATE AS day, count(*) AS revocations FROM cat_consent_ledger
           WHERE action IN ('revoke', 'delete') AND ts >= $start AND ts < $end GROUP BY 1),
     t AS (SELECT unpublished_at::DATE AS day, count(*) AS takedowns FROM video_dim
           WHERE unpublished_at >= $start AND unpublished_at < $end GROUP BY 1),
     v AS (SELECT ts::DATE AS day, count(*) AS verify_lookups FROM verifications WHERE ts >= $start AND ts < $end GROUP BY 1)
SELECT day, coalesce(consent_blocks, 0) AS consent_blocks, coalesce(rights_blocks, 0) AS rights_blocks,
       coalesce(revocations, 0) AS revocations, coalesce(takedowns, 0) AS takedowns,
       coalesce(verify_lookups, 0) AS verify_lookups
FROM d FULL JOIN r USING (day) FULL JOIN t USING (day) FULL JOIN v USING (day)
ORDER BY day
"""

# Rights blocks by holder and work. Grain: one row per (holder, work).
RIGHTS_BLOCKS = """
SELECT coalesce(holder, '(not recorded)') AS holder, coalesce(work, '(not recorded)') AS work, count(*) AS blocks,
       count(DISTINCT request_id) AS requests, max(ts) AS last_block
FROM decisions WHERE stage = 'rights' AND outcome = 'block' AND ts >= $start AND ts < $end
GROUP BY 1, 2 ORDER BY blocks DESC, holder, work
"""

# Takedowns in the window by cause. Grain: one row per cause.
TAKEDOWNS = """
SELECT CASE WHEN unpublished_reason LIKE 'rights rescreen:%' THEN 'rights re-screen'
            WHEN unpublished_reason LIKE 'consent sweep:%' THEN 'consent lapsed (sweep)'
            WHEN unpublished_reason LIKE 'removed by the owner%' THEN 'removed by a cameo owner'
            WHEN unpublished_reason IS NULL THEN '(no reason recorded)'
            ELSE 'consent revoked or other' END AS cause,
       count(*) AS videos, max(unpublished_at) AS last
FROM video_dim WHERE unpublished_at >= $start AND unpublished_at < $end
GROUP BY 1 ORDER BY videos DESC, cause
"""

# Provenance coverage of the videos Kinora published in the window (simulated rows excluded).
# Grain: one row. watermarked: the catalog holds the invisible mark's content id; signed: a C2PA
# manifest that read back Valid or Trusted; both: the two.
PROVENANCE_COVERAGE = """
SELECT count(*) AS published, count(*) FILTER (WHERE content_id IS NOT NULL) AS watermarked,
       count(*) FILTER (WHERE c2pa_state IN ('Valid', 'Trusted')) AS signed,
       count(*) FILTER (WHERE content_id IS NOT NULL AND c2pa_state IN ('Valid', 'Trusted')) AS both_stamps,
       count(*) FILTER (WHERE content_id IS NOT NULL AND c2pa_state IN ('Valid', 'Trusted')) / nullif(count(*), 0)
           AS coverage
FROM video_dim WHERE published_at >= $start AND published_at < $end AND model_family <> 'simulated'
"""

# Verify look-ups by verdict. Grain: one row per verdict.
VERIFY_VERDICTS = """
SELECT verdict, count(*) AS lookups, count(*) FILTER (WHERE source = 'api') AS via_api,
       count(*) FILTER (WHERE video_id IS NOT NULL) AS matched_a_video
FROM verifications WHERE ts >= $start AND ts < $end
GROUP BY 1 ORDER BY lookups DESC, verdict
"""

# Ranker versions with their offline metrics, newest first. Grain: one row per version.
MODEL_VERSIONS = """
SELECT version, created_at, in_production, promoted_at, ndcg10, lightgbm_ndcg10, recent_popular_ndcg10,
       most_popular_ndcg10, auc_watch, auc_like, auc_share, auc_remix, auc_negative, train_impressions
FROM ranking_models ORDER BY created_at DESC
"""

# Online engagement by ranker version (impressions and attributed actions in the window).
# Grain: one row per (day, version).
ONLINE_BY_VERSION = f"""
SELECT day, model_version, sum(impressions)::BIGINT AS impressions,
       sum(views) / nullif(sum(impressions), 0) AS view_rate, sum(likes) / nullif(sum(impressions), 0) AS like_rate,
       sum(remixes) / nullif(sum(impressions), 0) AS remix_rate,
       sum(negatives) / nullif(sum(impressions), 0) AS negative_rate,
       sum(watch_ms) / 1000.0 / nullif(sum(impressions), 0) AS watch_s_per_impression
FROM position_day WHERE {_DAYS} AND {_VERSION}
GROUP BY 1, 2 HAVING sum(impressions) > 0 ORDER BY 1, 2
"""

# Feed engagement per day straight from the raw lake (deduplicating every event on each run): what
# a page would cost without the rollups. Ad-hoc use and the analytics benchmark's baseline.
RAW_FEED_DAILY = """
SELECT ts::DATE AS day, count(DISTINCT user_id) AS active_users,
       count(DISTINCT request_id) FILTER (WHERE event_type = 'impression') AS sessions,
       count(*) FILTER (WHERE event_type = 'view') AS views, count(*) FILTER (WHERE event_type = 'like') AS likes,
       sum(watch_ms) FILTER (WHERE event_type = 'view') AS watch_ms
FROM events GROUP BY 1 ORDER BY 1
"""

# Filter choices.
CAMPAIGNS = "SELECT DISTINCT coalesce(campaign_id, '(api)') AS campaign FROM generations ORDER BY 1"
MODEL_VERSION_CHOICES = """
SELECT model_version FROM (SELECT DISTINCT model_version FROM position_day
                           UNION SELECT version FROM ranking_models) ORDER BY 1
"""
COHORT_CHOICES = "SELECT DISTINCT cohort FROM user_cohort ORDER BY 1"
DATA_RANGE = """
SELECT least((SELECT min(day) FROM feed_daily), (SELECT min(ts)::DATE FROM generations)) AS first_day,
       greatest((SELECT max(day) FROM feed_daily), (SELECT max(ts)::DATE FROM generations)) AS last_day
"""

PAGES: dict[str, dict[str, str]] = {
    "overview": {"overview": OVERVIEW, "feed_daily": FEED_DAILY},
    "feed": {"totals": FEED_TOTALS, "feed_daily": FEED_DAILY, "active_users": ACTIVE_USERS, "by_position": BY_POSITION, "by_cohort": BY_COHORT},
    "retention": {"retention": RETENTION_WEEKLY},
    "content": {"top_videos": TOP_VIDEOS, "top_creators": TOP_CREATORS, "remix_chains": REMIX_CHAINS,
                "cameo_usage": CAMEO_USAGE},
    "campaigns": {"funnel": CAMPAIGN_FUNNEL, "stages": STAGE_SECONDS, "devices": DEVICE_SECONDS,
                  "refusals": REFUSALS, "videos": PUBLISHED_VIDEOS},
    "trust": {"daily": TRUST_DAILY, "rights_blocks": RIGHTS_BLOCKS, "takedowns": TAKEDOWNS,
              "provenance": PROVENANCE_COVERAGE, "verdicts": VERIFY_VERDICTS},
    "ranking": {"versions": MODEL_VERSIONS, "online": ONLINE_BY_VERSION},
}
"""Every page's queries by name: what the Streamlit page shows and what the benchmark times."""

PAGE_SETUP: dict[str, dict[str, str]] = {"content": {"per_video": PER_VIDEO}}
"""Temp tables a page's queries share, built (with the page's parameters) before them."""


@dataclass(frozen=True)
class Metric:
    name: str
    definition: str
    grain: str
    page: str


METRICS: tuple[Metric, ...] = (
    Metric("active users (DAU)", "distinct users with any engagement event that UTC day", "day x cohort", "overview, feed"),
    Metric("WAU / MAU", "distinct users with an event in the 7 / 30 days ending that day", "day x cohort", "feed"),
    Metric("sessions", "distinct feed requests (request_id of impressions)", "day x cohort", "overview, feed"),
    Metric("views, watch time", "view events; sum of their watch_ms", "day x cohort; video x day", "feed, content"),
    Metric("completion rate", "views that watched >= dashboard.completion_share (0.9) of the video, over views of "
           "videos whose length is known", "day x cohort; video x day", "feed, content"),
    Metric("like / share / remix / comment rate", "those events per view", "day x cohort", "feed"),
    Metric("engagement by position", "impressions at a position; views, likes, shares, remixes attributed to the "
           "latest impression of the same user and video at or before them (same or previous UTC day), per impression",
           "position (x day x ranker version)", "feed, ranking"),
    Metric("cohort", "ISO week (Monday) of the user's first engagement event", "user", "feed, retention"),
    Metric("weekly retention", "share of a cohort with an event in week cohort + k", "cohort x week", "retention"),
    Metric("top videos / creators", "views, watch time, likes, remixes in the window", "video; creator", "content"),
    Metric("remix chain", "a video without a parent and every remix below it (depth: longest path)", "root video", "content"),
    Metric("cameo uses", "videos and drafts using a cameo, by use status (active, pending, removed, withdrawn)", "cameo",
           "content"),
    Metric("campaign funnel", "requests by latest outcome: blocked by consent, by rights, failed, generated, published",
           "campaign", "campaigns, overview"),
    Metric("stage seconds", "mean (and p95 for generation) seconds per stage of published requests", "campaign",
           "campaigns"),
    Metric("device seconds", "pipeline seconds spent per device class (GPU: cuda*, else CPU)", "campaign x device",
           "campaigns"),
    Metric("consent / rights blocks", "requests refused at that stage (decisions)", "day; holder x work", "trust"),
    Metric("revocations", "consent ledger entries revoking or deleting a cameo", "day", "trust"),
    Metric("takedowns", "videos taken out of circulation, by cause (from the unpublish reason)", "day; cause", "trust"),
    Metric("provenance coverage", "published videos with both the invisible mark's content id and a Valid/Trusted "
           "C2PA manifest, over published videos", "window", "trust"),
    Metric("verify look-ups", "kinora verify and POST /v1/provenance/verify calls, by verdict", "day; verdict", "trust"),
    Metric("offline ranker metrics", "NDCG@10 and AUC per head on the version's holdout, with its baselines", "version",
           "ranking"),
    Metric("online engagement by version", "impressions and attributed actions of pages that version ordered",
           "day x version", "ranking"),
)
