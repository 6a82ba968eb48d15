"""Human-readable summaries for the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console()


def print_summary(summary) -> None:
    table = Table(title=f"campaign {summary.campaign}", show_header=True)
    table.add_column("requested", justify="right")
    table.add_column("blocked by consent", justify="right")
    table.add_column("blocked by rights", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("generated", justify="right")
    table.add_column("published", justify="right")
    table.add_column("already published", justify="right")
    table.add_row(*(str(x) for x in (summary.requested, summary.blocked_consent, summary.blocked_rights, summary.failed,
                                      summary.generated, summary.published, summary.already_published)))
    console.print(table)
    stages = Table(title="seconds per stage (wall clock)")
    for name in summary.stage_seconds:
        stages.add_column(name, justify="right")
    stages.add_row(*(f"{v:.2f}" for v in summary.stage_seconds.values()))
    console.print(stages)
    for r in summary.refusals:
        console.print(f"  blocked ({r.stage}): {r.prompt!r}: {r.reason}")
    for r in summary.failures:
        console.print(f"  failed: {r.prompt!r}: {r.reason}")


def print_demo(result, settings) -> None:
    print_summary(result.summary)
    console.print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
    if result.api:
        final = result.api["final"]
        console.print(f"API: POST /v1/generations -> {result.api['submitted']['http_status']}, job {final['id']} {final['status']}"
                      + (f", video {final['video']['url']}" if final.get("video") else ""))
        if result.api.get("verify"):
            console.print(f"Verify: POST /v1/provenance/verify on that file -> {result.api['verify']['verdict_text']}")
    if result.engagement:
        e = result.engagement
        console.print(f"Engagement: {e['accepted']:,} simulated events ingested into the lake "
                      f"({e['duplicates']:,} repeats dropped), {e['catalog_videos']:,} simulated videos in the catalog")
    if result.ranking:
        r = result.ranking["retrain"]
        base = ", ".join(f"{k} {v:.3f}" for k, v in r["baselines_ndcg10"].items())
        console.print(f"Ranking: candidate {r['candidate']} NDCG@10 {r['candidate_ndcg10']:.3f} (baselines: {base}); "
                      f"promoted: {r['promoted']} ({'; '.join(r['reasons'])})")
        feed = result.ranking["feed"]
        console.print(f"Feed: GET /v1/feed?user_id=usr_alice -> {len(feed['videos'])} videos ranked by "
                      f"{feed['model_version']} from {feed['candidates']} candidates")
        for v in feed["videos"][:3]:
            console.print(f"  {v['position']}. {v['prompt'][:48]!r} - {'; '.join(v['reasons'])}")
    if result.analytics:
        rebuilt = result.analytics["days_rebuilt"]
        console.print(f"Analytics: refreshed at {result.analytics['refreshed_at']} ({rebuilt.get('events', 0)} days of "
                      f"events rolled up)")
    console.print(f"\nData home: {settings.home}\nOpen the dashboard:  kinora dashboard   (or: make dashboard)")
