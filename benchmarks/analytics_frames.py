"""The dashboard pages' queries written again in Polars and in pandas, over the same files the
DuckDB pages read (the analytics layer's rollups, derived tables, compacted tables and catalog
snapshot), for ``benchmarks/analytics.py`` to time against DuckDB. Each function returns the
page's results by query name, like :func:`dashboards.layer.page_data`; ``check`` pulls a few
numbers out of any engine's results so the benchmark can say the engines agree.

Also here: one metric (feed engagement per day) computed from the raw lake events in each engine,
the way a page would have to without the rollups.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

PAGES = ("overview", "feed", "retention", "content", "campaigns", "trust", "ranking")


# -- inputs --------------------------------------------------------------------------------------

def _glob(root: Path, *parts: str) -> str:
    return str(Path(root, *parts))


def _files(root: Path, *parts: str) -> list[str]:
    return sorted(str(p) for p in Path(root, *parts[:-1]).glob(parts[-1]))


def _days(p: dict) -> tuple[dt.date, dt.date]:
    return p["start"].date(), p["end"].date()


# -- Polars --------------------------------------------------------------------------------------

class PolarsPages:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def scan(self, kind: str, name: str) -> pl.LazyFrame:
        if kind == "derived":
            return pl.scan_parquet(_glob(self.root, "derived", f"{name}.parquet"))
        if kind == "catalog":
            return pl.scan_parquet(_glob(self.root, "catalog", f"{name}.parquet"))
        if kind == "models":
            return pl.scan_parquet(_glob(self.root, "ranking_models.parquet"))
        files = _files(self.root, kind, name, "*.parquet")
        return pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore") if files else None

    def generations(self) -> pl.LazyFrame:
        g = self.scan("compact", "generations")
        return g.sort("ts", descending=True).unique("request_id", keep="first")

    def video_dim(self) -> pl.LazyFrame:
        cat = self.scan("catalog", "videos").select(
            "video_id", "creator_id", "campaign_id", "prompt", "duration_ms", "model_family", "model_version",
            "published_at", "unpublished_at", "unpublished_reason", "remix_of", "content_id", "c2pa_state", "cameo_count")
        lake = self.scan("compact", "videos")
        if lake is None:
            return cat
        extra = (lake.join(cat.select("video_id"), on="video_id", how="anti").unique("video_id")
                 .select("video_id", "creator_id", "campaign_id", "prompt", "duration_ms", "model_family", "model_version",
                         "published_at", "c2pa_state", "cameo_count"))
        return pl.concat([cat, extra], how="diagonal_relaxed")

    @staticmethod
    def _in(col: str, values: list) -> pl.Expr:
        return pl.lit(True) if not values else pl.col(col).is_in(values)

    def page(self, name: str, p: dict) -> dict[str, pl.DataFrame]:
        return getattr(self, name)(p)

    def overview(self, p):
        s, e = p["start"], p["end"]
        ps = s - (e - s)
        fd = (self.scan("derived", "feed_daily").filter((pl.col("day") >= ps.date()) & (pl.col("day") < e.date()),
                                                        self._in("cohort", p["cohorts"]))
              .with_columns(period=pl.when(pl.col("day") >= s.date()).then(pl.lit("current")).otherwise(pl.lit("previous")))
              .group_by("period").agg(user_days=pl.col("active_users").sum(), days=pl.col("day").n_unique(),
                                      sessions=pl.col("sessions").sum(), views=pl.col("views").sum(),
                                      watch_ms=pl.col("watch_ms").sum(), likes=pl.col("likes").sum()))
        campaign = pl.col("campaign_id").fill_null("(api)").is_in(p["campaigns"]) if p["campaigns"] else pl.lit(True)
        g = (self.generations().filter((pl.col("ts") >= ps) & (pl.col("ts") < e), campaign)
             .with_columns(period=pl.when(pl.col("ts") >= s).then(pl.lit("current")).otherwise(pl.lit("previous")))
             .group_by("period").agg(requested=pl.len(), published=(pl.col("status") == "published").sum(),
                                     blocked=pl.col("status").is_in(["blocked_consent", "blocked_rights"]).sum()))
        v = (self.scan("compact", "verifications").filter((pl.col("ts") >= ps) & (pl.col("ts") < e))
             .with_columns(period=pl.when(pl.col("ts") >= s).then(pl.lit("current")).otherwise(pl.lit("previous")))
             .group_by("period").agg(lookups=pl.len()))
        periods = pl.LazyFrame({"period": ["current", "previous"]})
        out = (periods.join(fd, on="period", how="left").join(g, on="period", how="left").join(v, on="period", how="left")
               .select("period", avg_dau=pl.col("user_days") / pl.col("days"), sessions=pl.col("sessions").fill_null(0),
                       views=pl.col("views").fill_null(0), watch_hours=pl.col("watch_ms").fill_null(0) / 3.6e6,
                       like_rate=pl.col("likes") / pl.col("views"), requested=pl.col("requested").fill_null(0),
                       published=pl.col("published").fill_null(0), blocked_share=pl.col("blocked") / pl.col("requested"),
                       verify_lookups=pl.col("lookups").fill_null(0)).sort("period"))
        return {"overview": out.collect(), "feed_daily": self._feed_daily(p).collect()}

    def _feed_window(self, p):
        a, b = _days(p)
        return self.scan("derived", "feed_daily").filter((pl.col("day") >= a) & (pl.col("day") < b),
                                                         self._in("cohort", p["cohorts"]))

    def _feed_daily(self, p):
        return (self._feed_window(p).group_by("day").agg(
            pl.col("active_users").sum(), pl.col("sessions").sum(), pl.col("impressions").sum(), pl.col("views").sum(),
            watch_s=pl.col("watch_ms").sum() / 1000, completion_rate=pl.col("completed_views").sum() / pl.col("timed_views").sum(),
            like_rate=pl.col("likes").sum() / pl.col("views").sum(), share_rate=pl.col("shares").sum() / pl.col("views").sum(),
            remix_rate=pl.col("remixes").sum() / pl.col("views").sum(),
            comment_rate=pl.col("comments").sum() / pl.col("views").sum()).sort("day"))

    def feed(self, p):
        a, b = _days(p)
        w = self._feed_window(p)
        totals = w.select(sessions=pl.col("sessions").sum(), views=pl.col("views").sum(),
                          watch_hours=pl.col("watch_ms").sum() / 3.6e6,
                          completion_rate=pl.col("completed_views").sum() / pl.col("timed_views").sum(),
                          like_rate=pl.col("likes").sum() / pl.col("views").sum(),
                          remix_rate=pl.col("remixes").sum() / pl.col("views").sum())
        active = (self.scan("derived", "active_users").filter((pl.col("day") >= a) & (pl.col("day") < b),
                                                              self._in("cohort", p["cohorts"]))
                  .group_by("day").agg(pl.col("dau").sum(), pl.col("wau").sum(), pl.col("mau").sum()).sort("day"))
        pos = self._position(p).group_by("position").agg(
            impressions=pl.col("impressions").sum(), view_rate=pl.col("views").sum() / pl.col("impressions").sum(),
            like_rate=pl.col("likes").sum() / pl.col("impressions").sum(),
            share_rate=pl.col("shares").sum() / pl.col("impressions").sum(),
            remix_rate=pl.col("remixes").sum() / pl.col("impressions").sum(),
            watch_s_per_impression=pl.col("watch_ms").sum() / 1000 / pl.col("impressions").sum(),
        ).filter(pl.col("impressions") > 0).sort("position")
        cohort = w.group_by("cohort").agg(
            days=pl.col("day").n_unique(), user_days=pl.col("active_users").sum(),
            sessions_per_user_day=pl.col("sessions").sum() / pl.col("active_users").sum(),
            views_per_user_day=pl.col("views").sum() / pl.col("active_users").sum(),
            watch_s_per_user_day=pl.col("watch_ms").sum() / 1000 / pl.col("active_users").sum(),
            like_rate=pl.col("likes").sum() / pl.col("views").sum(),
            remix_rate=pl.col("remixes").sum() / pl.col("views").sum()).sort("cohort")
        return dict(zip(["totals", "feed_daily", "active_users", "by_position", "by_cohort"],
                        pl.collect_all([totals, self._feed_daily(p), active, pos, cohort])))

    def _position(self, p):
        a, b = _days(p)
        return self.scan("rollups", "position_day").filter((pl.col("day") >= a) & (pl.col("day") < b),
                                                           self._in("model_version", p["versions"]))

    def retention(self, p):
        a, b = _days(p)
        r = (self.scan("derived", "retention").filter((pl.col("cohort") >= a - dt.timedelta(days=6)) & (pl.col("cohort") < b),
                                                      self._in("cohort", p["cohorts"]))
             .with_columns(retained=pl.col("active_users") / pl.col("cohort_users")).sort("cohort", "weeks_since"))
        return {"retention": r.collect()}

    def content(self, p):
        a, b = _days(p)
        per_video = (self.scan("rollups", "video_day").filter((pl.col("day") >= a) & (pl.col("day") < b))
                     .group_by("video_id").agg(pl.col("impressions").sum(), pl.col("views").sum(), pl.col("watch_ms").sum(),
                                               likes=pl.col("likes").sum(), shares=pl.col("shares").sum(),
                                               remixes=pl.col("remixes").sum(), completed=pl.col("completed_views").sum(),
                                               timed=pl.col("timed_views").sum()).collect().lazy())  # shared, as in DuckDB
        dim = self.video_dim()
        top = (per_video.sort(["views", "video_id"], descending=[True, False]).head(p["top"])
               .join(dim.select("video_id", "creator_id", "prompt", "cameo_count", "remix_of"), on="video_id", how="left")
               .with_columns(watch_s=pl.col("watch_ms") / 1000, completion_rate=pl.col("completed") / pl.col("timed"))
               .drop("completed", "timed", "watch_ms").sort(["views", "video_id"], descending=[True, False]))
        creators = (per_video.join(dim.select("video_id", "creator_id"), on="video_id", how="left")
                    .with_columns(pl.col("creator_id").fill_null("(unknown)"))
                    .group_by("creator_id").agg(videos_watched=pl.len(), views=pl.col("views").sum(),
                                                watch_s=pl.col("watch_ms").sum() / 1000, likes=pl.col("likes").sum(),
                                                remixes=pl.col("remixes").sum())
                    .with_columns(like_rate=pl.col("likes") / pl.col("views"))
                    .sort(["views", "creator_id"], descending=[True, False]).head(p["top"]))
        chains = (self.scan("derived", "remix_tree")
                  .filter((pl.col("published_at") >= p["start"]) & (pl.col("published_at") < p["end"]))
                  .group_by("root").agg(depth=pl.col("depth").max(), remixes=pl.len())
                  .join(dim.select("video_id", "creator_id", "prompt"), left_on="root", right_on="video_id")
                  .select(video_id="root", creator_id="creator_id", prompt="prompt", depth="depth", remixes="remixes")
                  .sort(["remixes", "depth", "video_id"], descending=[True, True, False]).head(p["top"]))
        top, creators, chains = pl.collect_all([top, creators, chains])
        uses = self.scan("catalog", "cameo_uses").filter((pl.col("created_at") >= p["start"]) & (pl.col("created_at") < p["end"]))
        cameo = (self.scan("catalog", "cameos").join(uses, on="cameo_id", how="left")
                 .group_by("handle", "kind", "permission", "revoked_at").agg(
                     uses=pl.col("video_id").count(), active=(pl.col("status") == "active").sum(),
                     pending=(pl.col("status") == "pending").sum(), removed_by_owner=(pl.col("status") == "removed").sum(),
                     withdrawn=(pl.col("status") == "withdrawn").sum(), requesters=pl.col("requester_id").n_unique())
                 .with_columns(revoked=pl.col("revoked_at").is_not_null()).drop("revoked_at")
                 .sort(["uses", "handle"], descending=[True, False]).collect())
        return {"top_videos": top, "top_creators": creators, "remix_chains": chains, "cameo_usage": cameo}

    def _gens(self, p):
        camp = pl.col("campaign_id").fill_null("(api)")
        g = self.generations().filter((pl.col("ts") >= p["start"]) & (pl.col("ts") < p["end"]))
        return g.filter(camp.is_in(p["campaigns"])) if p["campaigns"] else g

    def campaigns(self, p):
        g = self._gens(p).with_columns(campaign=pl.col("campaign_id").fill_null("(api)"))
        funnel = g.group_by("campaign").agg(
            requested=pl.len(), blocked_consent=(pl.col("status") == "blocked_consent").sum(),
            blocked_rights=(pl.col("status") == "blocked_rights").sum(), failed=(pl.col("status") == "failed").sum(),
            generated=pl.col("generate_s").is_not_null().sum(), published=(pl.col("status") == "published").sum(),
            first_seen=pl.col("ts").min(), last_seen=pl.col("ts").max()).sort("last_seen", descending=True)
        pub = g.filter(pl.col("status") == "published")
        stages = pub.group_by("campaign").agg(
            published=pl.len(), consent_s=pl.col("consent_s").mean(), rights_s=pl.col("rights_s").mean(),
            queue_s=pl.col("queue_s").mean(), generate_s=pl.col("generate_s").mean(),
            generate_p95_s=pl.col("generate_s").quantile(0.95, "linear"), stamp_s=pl.col("stamp_s").mean(),
            mux_s=pl.col("mux_s").mean(), publish_s=pl.col("publish_s").mean()).sort("campaign")
        devices = (g.filter(pl.col("generate_s").is_not_null())
                   .with_columns(device=pl.when(pl.col("device").str.starts_with("cuda")).then(pl.lit("GPU"))
                                 .when(pl.col("device").is_null()).then(pl.lit("(unknown)")).otherwise(pl.lit("CPU")))
                   .group_by("campaign", "device").agg(clips=pl.len(), seconds=pl.col("generate_s").sum(),
                                                       video_seconds=pl.col("duration_s").sum()).sort("campaign", "device"))
        refusals = (g.filter(pl.col("status").is_in(["blocked_consent", "blocked_rights", "failed"]))
                    .select("campaign", "request_id", "status", "reason", "ts").sort("ts", descending=True))
        dim = self.video_dim().with_columns(campaign=pl.col("campaign_id").fill_null("(api)"))
        videos = dim.filter((pl.col("published_at") >= p["start"]) & (pl.col("published_at") < p["end"]),
                            pl.col("model_family") != "simulated")
        if p["campaigns"]:
            videos = videos.filter(pl.col("campaign").is_in(p["campaigns"]))
        videos = videos.select("video_id", "campaign", "creator_id", "prompt", duration_s=pl.col("duration_ms") / 1000,
                               model_family="model_family", model_version="model_version", c2pa_state="c2pa_state",
                               cameo_count="cameo_count", published_at="published_at",
                               unpublished_at="unpublished_at").sort("published_at", descending=True)
        return dict(zip(["funnel", "stages", "devices", "refusals", "videos"],
                        pl.collect_all([funnel, stages, devices, refusals, videos])))

    def trust(self, p):
        s, e = p["start"], p["end"]
        dec = self.scan("compact", "decisions").filter((pl.col("ts") >= s) & (pl.col("ts") < e))
        d = dec.group_by(day=pl.col("ts").dt.date()).agg(
            consent_blocks=((pl.col("stage") == "consent") & (pl.col("outcome") == "block")).sum(),
            rights_blocks=((pl.col("stage") == "rights") & (pl.col("outcome") == "block")).sum())
        r = (self.scan("catalog", "consent_ledger").filter(pl.col("action").is_in(["revoke", "delete"]),
                                                           (pl.col("ts") >= s) & (pl.col("ts") < e))
             .group_by(day=pl.col("ts").dt.date()).agg(revocations=pl.len()))
        dim = self.video_dim()
        t = (dim.filter((pl.col("unpublished_at") >= s) & (pl.col("unpublished_at") < e))
             .group_by(day=pl.col("unpublished_at").dt.date()).agg(takedowns=pl.len()))
        ver = self.scan("compact", "verifications").filter((pl.col("ts") >= s) & (pl.col("ts") < e))
        v = ver.group_by(day=pl.col("ts").dt.date()).agg(verify_lookups=pl.len())
        daily = (d.join(r, on="day", how="full", coalesce=True).join(t, on="day", how="full", coalesce=True)
                 .join(v, on="day", how="full", coalesce=True).fill_null(0).sort("day"))
        rights = (dec.filter(pl.col("stage") == "rights", pl.col("outcome") == "block")
                  .with_columns(pl.col("holder").fill_null("(not recorded)"), pl.col("work").fill_null("(not recorded)"))
                  .group_by("holder", "work").agg(blocks=pl.len(), requests=pl.col("request_id").n_unique(),
                                                  last_block=pl.col("ts").max())
                  .sort(["blocks", "holder", "work"], descending=[True, False, False]))
        reason = pl.col("unpublished_reason")
        takedowns = (dim.filter((pl.col("unpublished_at") >= s) & (pl.col("unpublished_at") < e))
                     .with_columns(cause=pl.when(reason.str.starts_with("rights rescreen:")).then(pl.lit("rights re-screen"))
                                   .when(reason.str.starts_with("consent sweep:")).then(pl.lit("consent lapsed (sweep)"))
                                   .when(reason.str.starts_with("removed by the owner")).then(pl.lit("removed by a cameo owner"))
                                   .when(reason.is_null()).then(pl.lit("(no reason recorded)"))
                                   .otherwise(pl.lit("consent revoked or other")))
                     .group_by("cause").agg(videos=pl.len(), last=pl.col("unpublished_at").max())
                     .sort(["videos", "cause"], descending=[True, False]))
        ok = pl.col("c2pa_state").is_in(["Valid", "Trusted"])
        cover = (dim.filter((pl.col("published_at") >= s) & (pl.col("published_at") < e), pl.col("model_family") != "simulated")
                 .select(published=pl.len(), watermarked=pl.col("content_id").is_not_null().sum(), signed=ok.sum(),
                         both_stamps=(pl.col("content_id").is_not_null() & ok).sum())
                 .with_columns(coverage=pl.col("both_stamps") / pl.col("published")))
        verdicts = ver.group_by("verdict").agg(lookups=pl.len(), via_api=(pl.col("source") == "api").sum(),
                                               matched_a_video=pl.col("video_id").is_not_null().sum()
                                               ).sort(["lookups", "verdict"], descending=[True, False])
        return dict(zip(["daily", "rights_blocks", "takedowns", "provenance", "verdicts"],
                        pl.collect_all([daily, rights, takedowns, cover, verdicts])))

    def ranking(self, p):
        versions = self.scan("models", "").sort("created_at", descending=True)
        online = self._position(p).group_by("day", "model_version").agg(
            impressions=pl.col("impressions").sum(), view_rate=pl.col("views").sum() / pl.col("impressions").sum(),
            like_rate=pl.col("likes").sum() / pl.col("impressions").sum(),
            remix_rate=pl.col("remixes").sum() / pl.col("impressions").sum(),
            negative_rate=pl.col("negatives").sum() / pl.col("impressions").sum(),
            watch_s_per_impression=pl.col("watch_ms").sum() / 1000 / pl.col("impressions").sum(),
        ).filter(pl.col("impressions") > 0).sort("day", "model_version")
        return dict(zip(["versions", "online"], pl.collect_all([versions, online])))


# -- pandas --------------------------------------------------------------------------------------

class PandasPages:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def read(self, kind: str, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        if kind == "derived":
            return pd.read_parquet(Path(self.root, "derived", f"{name}.parquet"), columns=columns)
        if kind == "catalog":
            return pd.read_parquet(Path(self.root, "catalog", f"{name}.parquet"), columns=columns)
        if kind == "models":
            return pd.read_parquet(Path(self.root, "ranking_models.parquet"), columns=columns)
        files = _files(self.root, kind, name, "*.parquet")
        return pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True) if files else pd.DataFrame()

    def page(self, name: str, p: dict) -> dict[str, pd.DataFrame]:
        return getattr(self, name)(p)

    @staticmethod
    def _day_mask(df: pd.DataFrame, col: str, p: dict) -> pd.Series:
        a, b = _days(p)
        d = pd.to_datetime(df[col]).dt.date
        return (d >= a) & (d < b)

    def generations(self) -> pd.DataFrame:
        g = self.read("compact", "generations")
        return g.sort_values("ts", ascending=False).drop_duplicates("request_id", keep="first")

    def video_dim(self) -> pd.DataFrame:
        cat = self.read("catalog", "videos")
        lake = self.read("compact", "videos")
        if lake.empty:
            return cat
        extra = lake[~lake["video_id"].isin(cat["video_id"])].drop_duplicates("video_id")
        return pd.concat([cat, extra[[c for c in extra.columns if c in cat.columns]]], ignore_index=True)

    def _feed(self, p):
        f = self.read("derived", "feed_daily")
        f = f[self._day_mask(f, "day", p)]
        return f[f["cohort"].isin(p["cohorts"])] if p["cohorts"] else f

    @staticmethod
    def _daily(f: pd.DataFrame) -> pd.DataFrame:
        g = f.groupby("day", as_index=False)[["active_users", "sessions", "impressions", "views", "watch_ms", "timed_views",
                                              "completed_views", "likes", "shares", "remixes", "comments"]].sum()
        views = g["views"].replace(0, np.nan)
        return pd.DataFrame({"day": g["day"], "active_users": g["active_users"], "sessions": g["sessions"],
                             "impressions": g["impressions"], "views": g["views"], "watch_s": g["watch_ms"] / 1000,
                             "completion_rate": g["completed_views"] / g["timed_views"].replace(0, np.nan),
                             "like_rate": g["likes"] / views, "share_rate": g["shares"] / views,
                             "remix_rate": g["remixes"] / views, "comment_rate": g["comments"] / views}).sort_values("day")

    def overview(self, p):
        s, e = p["start"], p["end"]
        ps = s - (e - s)
        f = self.read("derived", "feed_daily")
        d = pd.to_datetime(f["day"]).dt.date
        f = f[(d >= ps.date()) & (d < e.date())]
        if p["cohorts"]:
            f = f[f["cohort"].isin(p["cohorts"])]
        f = f.assign(period=np.where(pd.to_datetime(f["day"]).dt.date >= s.date(), "current", "previous"))
        fa = f.groupby("period").agg(user_days=("active_users", "sum"), days=("day", "nunique"), sessions=("sessions", "sum"),
                                     views=("views", "sum"), watch_ms=("watch_ms", "sum"), likes=("likes", "sum"))
        g = self.generations()
        g = g[(g["ts"] >= ps) & (g["ts"] < e)]
        if p["campaigns"]:
            g = g[g["campaign_id"].fillna("(api)").isin(p["campaigns"])]
        g = g.assign(period=np.where(g["ts"] >= s, "current", "previous"),
                     pub=g["status"] == "published", blk=g["status"].isin(["blocked_consent", "blocked_rights"]))
        ga = g.groupby("period").agg(requested=("request_id", "size"), published=("pub", "sum"), blocked=("blk", "sum"))
        v = self.read("compact", "verifications")
        v = v[(v["ts"] >= ps) & (v["ts"] < e)] if not v.empty else v
        va = (v.assign(period=np.where(v["ts"] >= s, "current", "previous")).groupby("period").size().rename("lookups")
              if not v.empty else pd.Series(dtype="int64", name="lookups"))
        out = pd.DataFrame(index=pd.Index(["current", "previous"], name="period")).join(fa).join(ga).join(va)
        res = pd.DataFrame({"period": out.index, "avg_dau": out["user_days"] / out["days"],
                            "sessions": out["sessions"].fillna(0), "views": out["views"].fillna(0),
                            "watch_hours": out["watch_ms"].fillna(0) / 3.6e6, "like_rate": out["likes"] / out["views"],
                            "requested": out["requested"].fillna(0), "published": out["published"].fillna(0),
                            "blocked_share": out["blocked"] / out["requested"],
                            "verify_lookups": out["lookups"].fillna(0)}).reset_index(drop=True)
        return {"overview": res, "feed_daily": self._daily(self._feed(p))}

    def feed(self, p):
        f = self._feed(p)
        tot = f[["sessions", "views", "watch_ms", "completed_views", "timed_views", "likes", "remixes"]].sum()
        totals = pd.DataFrame([{"sessions": tot["sessions"], "views": tot["views"], "watch_hours": tot["watch_ms"] / 3.6e6,
                                "completion_rate": tot["completed_views"] / tot["timed_views"] if tot["timed_views"] else None,
                                "like_rate": tot["likes"] / tot["views"] if tot["views"] else None,
                                "remix_rate": tot["remixes"] / tot["views"] if tot["views"] else None}])
        a = self.read("derived", "active_users")
        a = a[self._day_mask(a, "day", p)]
        if p["cohorts"]:
            a = a[a["cohort"].isin(p["cohorts"])]
        active = a.groupby("day", as_index=False)[["dau", "wau", "mau"]].sum().sort_values("day")
        pos = self._position(p).groupby("position", as_index=False)[["impressions", "views", "likes", "shares", "remixes",
                                                                     "watch_ms"]].sum()
        pos = pos[pos["impressions"] > 0]
        by_pos = pd.DataFrame({"position": pos["position"], "impressions": pos["impressions"],
                               "view_rate": pos["views"] / pos["impressions"], "like_rate": pos["likes"] / pos["impressions"],
                               "share_rate": pos["shares"] / pos["impressions"],
                               "remix_rate": pos["remixes"] / pos["impressions"],
                               "watch_s_per_impression": pos["watch_ms"] / 1000 / pos["impressions"]}).sort_values("position")
        c = f.groupby("cohort").agg(days=("day", "nunique"), user_days=("active_users", "sum"), sessions=("sessions", "sum"),
                                    views=("views", "sum"), watch_ms=("watch_ms", "sum"), likes=("likes", "sum"),
                                    remixes=("remixes", "sum")).reset_index()
        cohort = pd.DataFrame({"cohort": c["cohort"], "days": c["days"], "user_days": c["user_days"],
                               "sessions_per_user_day": c["sessions"] / c["user_days"],
                               "views_per_user_day": c["views"] / c["user_days"],
                               "watch_s_per_user_day": c["watch_ms"] / 1000 / c["user_days"],
                               "like_rate": c["likes"] / c["views"], "remix_rate": c["remixes"] / c["views"]})
        return {"totals": totals, "feed_daily": self._daily(f), "active_users": active, "by_position": by_pos,
                "by_cohort": cohort}

    def _position(self, p):
        pos = self.read("rollups", "position_day")
        pos = pos[self._day_mask(pos, "day", p)]
        return pos[pos["model_version"].isin(p["versions"])] if p["versions"] else pos

    def retention(self, p):
        a, b = _days(p)
        r = self.read("derived", "retention")
        c = pd.to_datetime(r["cohort"]).dt.date
        r = r[(c >= a - dt.timedelta(days=6)) & (c < b)]
        if p["cohorts"]:
            r = r[r["cohort"].isin(p["cohorts"])]
        return {"retention": r.assign(retained=r["active_users"] / r["cohort_users"]).sort_values(["cohort", "weeks_since"])}

    def content(self, p):
        vd = self.read("rollups", "video_day")
        vd = vd[self._day_mask(vd, "day", p)]
        dim = self.video_dim()
        per_video = vd.groupby("video_id").agg(
            impressions=("impressions", "sum"), views=("views", "sum"), watch_ms=("watch_ms", "sum"), likes=("likes", "sum"),
            shares=("shares", "sum"), remixes=("remixes", "sum"), completed=("completed_views", "sum"),
            timed=("timed_views", "sum")).reset_index()  # shared by both tables, as in DuckDB
        g = per_video.sort_values(["views", "video_id"], ascending=[False, True]).head(p["top"])
        g = g.merge(dim[["video_id", "creator_id", "prompt", "cameo_count", "remix_of"]], on="video_id", how="left")
        g["watch_s"] = g.pop("watch_ms") / 1000
        g["completion_rate"] = g.pop("completed") / g.pop("timed").replace(0, np.nan)
        top = g
        m = per_video.merge(dim[["video_id", "creator_id"]], on="video_id", how="left")
        m["creator_id"] = m["creator_id"].fillna("(unknown)")
        cr = m.groupby("creator_id").agg(videos_watched=("video_id", "size"), views=("views", "sum"),
                                         watch_ms=("watch_ms", "sum"), likes=("likes", "sum"), remixes=("remixes", "sum")).reset_index()
        cr["watch_s"] = cr.pop("watch_ms") / 1000
        cr["like_rate"] = cr["likes"] / cr["views"].replace(0, np.nan)
        creators = cr.sort_values(["views", "creator_id"], ascending=[False, True]).head(p["top"])
        tree = self.read("derived", "remix_tree")
        tree = tree[(tree["published_at"] >= p["start"]) & (tree["published_at"] < p["end"])]
        chains = tree.groupby("root").agg(depth=("depth", "max"), remixes=("video_id", "size")).reset_index()
        chains = chains.merge(dim[["video_id", "creator_id", "prompt"]], left_on="root", right_on="video_id")
        chains = chains[["video_id", "creator_id", "prompt", "depth", "remixes"]].sort_values(
            ["remixes", "depth", "video_id"], ascending=[False, False, True]).head(p["top"])
        cameos, uses = self.read("catalog", "cameos"), self.read("catalog", "cameo_uses")
        uses = uses[(uses["created_at"] >= p["start"]) & (uses["created_at"] < p["end"])]
        j = cameos.merge(uses, on="cameo_id", how="left")
        for status, col in (("active", "active"), ("pending", "pending"), ("removed", "removed_by_owner"),
                            ("withdrawn", "withdrawn")):
            j[col] = j["status"] == status
        cu = j.groupby(["handle", "kind", "permission"], dropna=False).agg(
            uses=("video_id", "count"), active=("active", "sum"), pending=("pending", "sum"),
            removed_by_owner=("removed_by_owner", "sum"), withdrawn=("withdrawn", "sum"),
            requesters=("requester_id", "nunique"), revoked=("revoked_at", lambda s: s.notna().any())).reset_index()
        cu = cu.sort_values(["uses", "handle"], ascending=[False, True])
        return {"top_videos": top, "top_creators": creators, "remix_chains": chains, "cameo_usage": cu}

    def campaigns(self, p):
        g = self.generations()
        g = g[(g["ts"] >= p["start"]) & (g["ts"] < p["end"])].assign(campaign=lambda d: d["campaign_id"].fillna("(api)"))
        if p["campaigns"]:
            g = g[g["campaign"].isin(p["campaigns"])]
        st = g["status"]
        g = g.assign(bc=st == "blocked_consent", br=st == "blocked_rights", fl=st == "failed",
                     gen=g["generate_s"].notna(), pub=st == "published")
        funnel = g.groupby("campaign").agg(requested=("request_id", "size"), blocked_consent=("bc", "sum"),
                                           blocked_rights=("br", "sum"), failed=("fl", "sum"), generated=("gen", "sum"),
                                           published=("pub", "sum"), first_seen=("ts", "min"), last_seen=("ts", "max")
                                           ).reset_index().sort_values("last_seen", ascending=False)
        pub = g[g["pub"]]
        stages = pub.groupby("campaign").agg(published=("request_id", "size"), consent_s=("consent_s", "mean"),
                                             rights_s=("rights_s", "mean"), queue_s=("queue_s", "mean"),
                                             generate_s=("generate_s", "mean"),
                                             generate_p95_s=("generate_s", lambda s: s.quantile(0.95)),
                                             stamp_s=("stamp_s", "mean"), mux_s=("mux_s", "mean"),
                                             publish_s=("publish_s", "mean")).reset_index()
        gen = g[g["gen"]]
        dev = np.where(gen["device"].fillna("").str.startswith("cuda"), "GPU", np.where(gen["device"].isna(), "(unknown)", "CPU"))
        devices = gen.assign(device=dev).groupby(["campaign", "device"]).agg(
            clips=("request_id", "size"), seconds=("generate_s", "sum"), video_seconds=("duration_s", "sum")).reset_index()
        refusals = g[st.loc[g.index].isin(["blocked_consent", "blocked_rights", "failed"])][
            ["campaign", "request_id", "status", "reason", "ts"]].sort_values("ts", ascending=False)
        dim = self.video_dim()
        dim = dim.assign(campaign=dim["campaign_id"].fillna("(api)"))
        v = dim[(dim["published_at"] >= p["start"]) & (dim["published_at"] < p["end"]) & (dim["model_family"] != "simulated")]
        if p["campaigns"]:
            v = v[v["campaign"].isin(p["campaigns"])]
        v = v.assign(duration_s=v["duration_ms"] / 1000)[
            ["video_id", "campaign", "creator_id", "prompt", "duration_s", "model_family", "model_version", "c2pa_state",
             "cameo_count", "published_at", "unpublished_at"]].sort_values("published_at", ascending=False)
        return {"funnel": funnel, "stages": stages, "devices": devices, "refusals": refusals, "videos": v}

    def trust(self, p):
        s, e = p["start"], p["end"]
        dec = self.read("compact", "decisions")
        dec = dec[(dec["ts"] >= s) & (dec["ts"] < e)]
        dec = dec.assign(day=dec["ts"].dt.date, cb=(dec["stage"] == "consent") & (dec["outcome"] == "block"),
                         rb=(dec["stage"] == "rights") & (dec["outcome"] == "block"))
        d = dec.groupby("day").agg(consent_blocks=("cb", "sum"), rights_blocks=("rb", "sum"))
        led = self.read("catalog", "consent_ledger")
        led = led[led["action"].isin(["revoke", "delete"]) & (led["ts"] >= s) & (led["ts"] < e)]
        r = led.groupby(led["ts"].dt.date.rename("day")).size().rename("revocations")
        dim = self.video_dim()
        down = dim[(dim["unpublished_at"] >= s) & (dim["unpublished_at"] < e)]
        t = down.groupby(down["unpublished_at"].dt.date.rename("day")).size().rename("takedowns")
        ver = self.read("compact", "verifications")
        ver = ver[(ver["ts"] >= s) & (ver["ts"] < e)]
        v = ver.groupby(ver["ts"].dt.date.rename("day")).size().rename("verify_lookups")
        daily = pd.concat([d, r, t, v], axis=1).fillna(0).astype("int64").rename_axis("day").reset_index().sort_values("day")
        rb = dec[dec["rb"]].fillna({"holder": "(not recorded)", "work": "(not recorded)"})
        rights = rb.groupby(["holder", "work"]).agg(blocks=("request_id", "size"), requests=("request_id", "nunique"),
                                                    last_block=("ts", "max")).reset_index().sort_values(
            ["blocks", "holder", "work"], ascending=[False, True, True])
        reason = down["unpublished_reason"]
        cause = np.select([reason.str.startswith("rights rescreen:", na=False), reason.str.startswith("consent sweep:", na=False),
                           reason.str.startswith("removed by the owner", na=False), reason.isna()],
                          ["rights re-screen", "consent lapsed (sweep)", "removed by a cameo owner", "(no reason recorded)"],
                          "consent revoked or other")
        takedowns = down.assign(cause=cause).groupby("cause").agg(videos=("video_id", "size"),
                                                                 last=("unpublished_at", "max")).reset_index().sort_values(
            ["videos", "cause"], ascending=[False, True])
        pub = dim[(dim["published_at"] >= s) & (dim["published_at"] < e) & (dim["model_family"] != "simulated")]
        ok = pub["c2pa_state"].isin(["Valid", "Trusted"])
        wm = pub["content_id"].notna()
        n = len(pub)
        cover = pd.DataFrame([{"published": n, "watermarked": int(wm.sum()), "signed": int(ok.sum()),
                               "both_stamps": int((wm & ok).sum()), "coverage": (wm & ok).sum() / n if n else None}])
        verdicts = ver.assign(api=ver["source"] == "api", matched=ver["video_id"].notna()).groupby("verdict").agg(
            lookups=("verification_id", "size"), via_api=("api", "sum"), matched_a_video=("matched", "sum")).reset_index()
        verdicts = verdicts.sort_values(["lookups", "verdict"], ascending=[False, True])
        return {"daily": daily, "rights_blocks": rights, "takedowns": takedowns, "provenance": cover, "verdicts": verdicts}

    def ranking(self, p):
        versions = self.read("models", "").sort_values("created_at", ascending=False)
        pos = self._position(p).groupby(["day", "model_version"], as_index=False)[
            ["impressions", "views", "likes", "remixes", "negatives", "watch_ms"]].sum()
        pos = pos[pos["impressions"] > 0]
        i = pos["impressions"]
        online = pd.DataFrame({"day": pos["day"], "model_version": pos["model_version"], "impressions": i,
                               "view_rate": pos["views"] / i, "like_rate": pos["likes"] / i, "remix_rate": pos["remixes"] / i,
                               "negative_rate": pos["negatives"] / i, "watch_s_per_impression": pos["watch_ms"] / 1000 / i})
        return {"versions": versions, "online": online.sort_values(["day", "model_version"])}


# -- agreement -----------------------------------------------------------------------------------

def check(results: dict[str, dict]) -> dict:
    """A few numbers from every page, whatever the engine (frames from Polars, pandas or DuckDB->Polars)."""
    def frame(page, name):
        f = results[page][name]
        return f if isinstance(f, pd.DataFrame) else f.to_pandas()

    def total(page, name, col):
        f = frame(page, name)
        return float(f[col].sum()) if len(f) else 0.0

    return {
        "overview_views": total("overview", "overview", "views"),
        "feed_views": total("feed", "feed_daily", "views"),
        "feed_mau_sum": total("feed", "active_users", "mau"),
        "by_position_impressions": total("feed", "by_position", "impressions"),
        "retention_active": total("retention", "retention", "active_users"),
        "top_video": str(frame("content", "top_videos")["video_id"].iloc[0]) if len(frame("content", "top_videos")) else None,
        "top_views": total("content", "top_videos", "views"),
        "remixes_in_chains": total("content", "remix_chains", "remixes"),
        "cameo_uses": total("content", "cameo_usage", "uses"),
        "requested": total("campaigns", "funnel", "requested"),
        "device_seconds": round(total("campaigns", "devices", "seconds"), 6),
        "trust_rights_blocks": total("trust", "daily", "rights_blocks"),
        "takedowns": total("trust", "takedowns", "videos"),
        "verify_lookups": total("trust", "verdicts", "lookups"),
        "online_impressions": total("ranking", "online", "impressions"),
        "versions": len(frame("ranking", "versions")),
    }


# -- one metric from the raw lake (what a page would cost without the rollups) -------------------

def raw_feed_daily_polars(lake: Path) -> pl.DataFrame:
    ev = pl.scan_parquet(str(Path(lake, "events", "date=*", "*.parquet")), hive_partitioning=False)
    ev = ev.unique("event_id", keep="any")
    return (ev.group_by(day=pl.col("ts").dt.date()).agg(
        active_users=pl.col("user_id").n_unique(),
        sessions=pl.col("request_id").filter(pl.col("event_type") == "impression").n_unique(),
        views=(pl.col("event_type") == "view").sum(), likes=(pl.col("event_type") == "like").sum(),
        watch_ms=pl.col("watch_ms").filter(pl.col("event_type") == "view").sum()).sort("day").collect())


def raw_feed_daily_pandas(lake: Path) -> pd.DataFrame:
    files = sorted(Path(lake, "events").glob("date=*/*.parquet"))
    cols = ["event_id", "ts", "user_id", "event_type", "watch_ms", "request_id"]
    ev = pd.concat([pd.read_parquet(f, columns=cols) for f in files], ignore_index=True).drop_duplicates("event_id")
    ev["day"] = ev["ts"].dt.date
    imp = ev[ev["event_type"] == "impression"]
    views = ev[ev["event_type"] == "view"]
    out = pd.DataFrame({"active_users": ev.groupby("day")["user_id"].nunique(),
                        "sessions": imp.groupby("day")["request_id"].nunique(),
                        "views": views.groupby("day").size(), "likes": ev[ev["event_type"] == "like"].groupby("day").size(),
                        "watch_ms": views.groupby("day")["watch_ms"].sum()})
    return out.fillna(0).reset_index()

