"""``kinora``: the command line for ops and developers.

Heavy libraries (torch, diffusers, Ray, Prefect) are imported inside the commands that need
them, so ``kinora --help`` answers at once. Errors in input files print one line naming the
file and the field, and exit with status 2; no traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from kinora.errors import KinoraError

app = typer.Typer(help="Kinora: text to short video with consent, rights and provenance built in.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
campaign_app = typer.Typer(help="Batch generation campaigns.", no_args_is_help=True)
rights_app = typer.Typer(help="The rights registry.", no_args_is_help=True)
db_app = typer.Typer(help="The operational store.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (stored hashed; a secret is shown once).", no_args_is_help=True)
events_app = typer.Typer(help="Engagement events: import into the lake.", no_args_is_help=True)
consent_app = typer.Typer(help="Cameo consent: the signed ledger, exports, the sweep.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(rights_app, name="rights")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(consent_app, name="consent")
app.add_typer(events_app, name="events")
ranking_app = typer.Typer(help="The feed ranker: train, evaluate, score, promote, roll back.", no_args_is_help=True)
app.add_typer(ranking_app, name="ranking")
analytics_app = typer.Typer(help="The dashboards' semantic layer: refresh it, list its metrics.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")


def _settings():
    from pydantic import ValidationError

    from kinora.settings import load_settings

    try:
        return load_settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        _die(f"settings: {loc}: {err['msg']} (set by KINORA_{loc.upper().replace('.', '__')} or the settings file)")


def _die(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _quiet_libraries() -> None:
    # Prefect configures its own handlers at import, from its settings: ask it for warnings only.
    import os

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry from an offline machine
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("prefect", "ray", "ray.serve", "httpx", "urllib3", "diffusers", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)


@app.command()
def demo(
    campaign_file: Path = typer.Option(None, "--campaign", help="Campaign file; default datasets/campaigns/demo.yaml."),
    no_api: bool = typer.Option(False, "--no-api", help="Skip the HTTP API round trip."),
) -> None:
    """Run the whole platform end to end on the embedded defaults (what `make demo` runs)."""
    from kinora.demo import DEMO_CAMPAIGN, run_demo
    from kinora.report import print_demo

    _quiet_libraries()
    settings = _settings()
    try:
        result = run_demo(settings, campaign_path=campaign_file or DEMO_CAMPAIGN, api_check=not no_api,
                          progress=lambda m: typer.echo(f"· {m}"))
    except KinoraError as exc:
        _die(str(exc))
    print_demo(result, settings)


@app.command()
def seed(seed_dir: Path = typer.Option(None, help="Folder with users.yaml, cameos.yaml, rights.csv.")) -> None:
    """Load the seed users, cameos (with consent grants) and rights registry."""
    from kinora.seed import SEED_DIR
    from kinora.seed import seed as run_seed
    from kinora.stores.bundle import Stores

    settings = _settings()
    try:
        stores = Stores.open(settings)
        with stores.engine.begin() as conn:
            counts = run_seed(conn=conn, settings=settings, media=stores.media, seed_dir=seed_dir or SEED_DIR)
    except KinoraError as exc:
        _die(str(exc))
    typer.echo(f"seeded {counts.users} users, {counts.cameos} cameos, {counts.works} works into {settings.home}")


@campaign_app.command("run")
def campaign_run(
    campaign_file: Path = typer.Argument(..., help="Campaign YAML (see datasets/campaigns/demo.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    keep_serving: bool = typer.Option(False, help="Leave a locally started Ray and Serve running afterwards."),
    engine: str = typer.Option("serve", "--engine", help="'serve': generate on the Serve generator deployment; "
                               "'ray-data': on a Ray Data actor pool (large offline campaigns; reports throughput)."),
) -> None:
    """Run a generation campaign: consent, rights, generation, provenance, publish."""
    from kinora.campaign import load_campaign
    from kinora.report import print_summary

    _quiet_libraries()
    settings = _settings()
    try:
        if engine not in ("serve", "ray-data"):
            _die(f"--engine: {engine!r} is not one of 'serve', 'ray-data'")
        load_campaign(campaign_file)  # fail fast, before Ray or Prefect start
        from serving.runtime import shutdown  # first: it sets Ray's env before Ray loads

        if engine == "ray-data":
            from flows.campaign_batch import campaign_batch as campaign
        else:
            from flows.campaign import campaign

        try:
            summary = campaign(str(campaign_file))
        finally:
            if not keep_serving and not settings.serve.ray_address:
                shutdown()
    except KinoraError as exc:
        _die(str(exc))
    if json_out:
        typer.echo(summary.model_dump_json(indent=2))
    else:
        print_summary(summary)
        if engine == "ray-data":
            typer.echo(f"throughput: {summary.videos_per_s:.3f} videos/s over {summary.total_seconds:.1f} s; "
                       f"generation {summary.generated_per_s:.3f} clips/s on {summary.actors} actor(s), "
                       f"batch size {summary.batch_size}, {summary.num_gpus_per_actor:g} GPU(s) each")


@app.command()
def serve() -> None:
    """Run the Serve application (HTTP API and generator) in the foreground until Ctrl-C."""
    import time

    from serving.runtime import shutdown, start_serve

    _quiet_libraries()
    settings = _settings()
    from kinora.stores.bundle import Stores

    Stores.open(settings)
    start_serve(settings)
    typer.echo(f"Kinora API on {settings.public_base_url} (Ctrl-C stops)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        shutdown()


@app.command()
def dashboard(port: int = typer.Option(None, help="Port; default from settings (8501).")) -> None:
    """Open the analytics dashboard (Streamlit over DuckDB on the lake)."""
    import subprocess

    from dashboards.layer import refresh_all, refreshed_at

    settings = _settings()
    if refreshed_at(settings.analytics_dir) is None:  # first open: build the layer the pages read
        refresh_all(settings, progress=lambda msg: typer.echo(msg, err=True))
    page = Path(__file__).resolve().parent.parent / "dashboards" / "app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(page), "--server.headless", "true",
           "--server.address", settings.dashboard.host, "--server.port", str(port or settings.dashboard.port),
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    typer.echo(f"dashboard on http://{settings.dashboard.host}:{port or settings.dashboard.port}")
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    timeout: float = typer.Option(2.0, min=0.1, help="Seconds each network check may take."),
) -> None:
    """The health of every component: store and jobs, lake, media, analytics, ranker, API, Ray, Prefect.

    Exit 0 when the required components (store, lake, media) answer, 1 when one is down."""
    from kinora import status as health

    checks = health.status(_settings(), timeout_s=timeout)
    if as_json:
        typer.echo(health.as_json(checks))
    else:
        width = max(len(c.component) for c in checks)
        for c in checks:
            typer.echo(f"{c.component:<{width}}  {c.state:<4}  {c.detail}")
    raise typer.Exit(0 if health.healthy(checks) else 1)


@app.command()
def trace(request_id: str = typer.Argument(..., help="A generation's request id (the job id: req_...).")) -> None:
    """Every step of one generation, from every process's JSON log: submitted, admitted, published."""
    from kinora.observability import read_trace

    settings = _settings()
    lines = list(read_trace(settings.log_dir, request_id))
    if not lines:
        _die(f"no trace of {request_id} under {settings.log_dir}", code=1)
    for doc in lines:
        typer.echo(json.dumps(doc, ensure_ascii=False))


@app.command()
def verify(
    file: Path = typer.Argument(..., help="A video file to check (MP4)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a summary."),
) -> None:
    """Check a video against this Kinora: C2PA credentials, invisible watermark, catalog, one verdict.

    Exit 0 when the video was made by this Kinora (intact, or stripped/re-encoded), 1 when it is
    tampered or unknown."""
    from kinora.provenance.certs import load_signer_material
    from kinora.provenance.verify import verification_row, verify_file
    from kinora.stores.bundle import Stores

    settings = _settings()
    if not file.is_file():
        _die(f"{file}: file not found")
    material = load_signer_material(settings.provenance, settings.cert_dir)
    anchors = material.root_pem
    if settings.provenance.trust_anchors_path:
        anchors = (anchors or b"") + settings.provenance.trust_anchors_path.read_bytes()
    stores = Stores.open(settings)
    with stores.engine.connect() as conn:
        report = verify_file(file, conn=conn, trust_anchors_pem=anchors)
    stores.lake.append("verifications", [verification_row(report, source="cli")])
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        typer.echo(f"{file}: {report.verdict_text}")
        for line in report.reasons:
            typer.echo(f"  {line}")
        typer.echo(f"  C2PA: {report.c2pa.state}" + (f" ({'; '.join(report.c2pa.codes)})" if report.c2pa.codes else ""))
        typer.echo(f"  watermark: " + (f"content id {report.watermark.content_id}, confidence {report.watermark.confidence}"
                                       if report.watermark.found else f"none read (confidence {report.watermark.confidence})"))
        if report.catalog:
            typer.echo(f"  catalog: {report.catalog.video_id} ({report.catalog.state}; same file: {report.catalog.same_file})")
    raise typer.Exit(0 if report.verdict in {"intact", "stripped_or_reencoded"} else 1)


@rights_app.command("import")
def rights_import(
    file: Path = typer.Argument(..., help="CSV or JSONL: holder, work, kind, aliases, description, policy, terms[, holder_default]."),
    rescreen: bool = typer.Option(True, help="Re-screen the catalog afterwards when the registry changed."),
) -> None:
    """Import rights holders and works (every row checked first; nothing imported on error), then re-screen."""
    from kinora.stores.bundle import Stores
    from kinora.trust.registry_file import import_rows, read_registry_file

    settings = _settings()
    try:
        rows = read_registry_file(file)
        engine = Stores.open(settings).engine
        with engine.begin() as conn:
            n = import_rows(conn=conn, rows=rows)
    except KinoraError as exc:
        _die(str(exc))
    typer.echo(f"imported {n} works from {file}")
    if rescreen:
        _rescreen(engine, settings, trigger="import", force=False)


def _rescreen(engine, settings, *, trigger: str, force: bool, page: int = 1000) -> None:
    from kinora.trust.rescreen import rescreen

    with engine.begin() as conn:
        result = rescreen(conn=conn, settings=settings, trigger=trigger, force=force, page=page)
    if result.skipped:
        typer.echo("rights rescreen: registry unchanged since the last re-screen; nothing to do")
        return
    typer.echo(f"rights rescreen: {result.checked} videos checked, {len(result.taken_down)} taken down")
    for item in result.taken_down[:20]:
        typer.echo(f"  {item.video_id}: {item.reason}")


@rights_app.command("rescreen")
def rights_rescreen_cmd(
    force: bool = typer.Option(False, help="Re-screen even when the registry has not changed."),
    page: int = typer.Option(1000, min=1, help="Videos screened per batch."),
) -> None:
    """Re-screen the catalog against the registry and take down what it now blocks (the scheduled flow, run now)."""
    from kinora.stores.bundle import Stores

    settings = _settings()
    _rescreen(Stores.open(settings).engine, settings, trigger="manual", force=force, page=page)


@rights_app.command("screen")
def rights_screen(
    src: Path = typer.Option(..., "--in", help='JSONL, one {"id": ..., "prompt": ...} per line.'),
    dst: Path = typer.Option(..., "--out", help="JSONL decisions, one per input line, in order."),
    requester: str = typer.Option(None, help="Screen as this user (public figures need a cameo that permits them)."),
    batch: int = typer.Option(256, min=1, help="Prompts embedded together."),
) -> None:
    """Screen prompts against the registry: {"id", "decision", "matches": [{holder, work, method, score}], "reason"} per line."""
    from kinora.stores import users as user_store
    from kinora.stores.bundle import Stores
    from kinora.trust.rights import screen_prompts

    settings = _settings()
    items = []
    try:
        lines = src.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        _die(f"{src}: cannot read ({exc.strerror})")
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            _die(f"{src}: line {n}: not valid JSON ({exc.msg})")
        if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("prompt"), str):
            _die(f"{src}: line {n}: needs \"id\" and a string \"prompt\"")
        items.append(item)
    engine = Stores.open(settings).engine
    with engine.connect() as conn:
        requester_id = None
        if requester:
            user = user_store.get_user_by_handle(conn=conn, handle=requester)
            if user is None:
                _die(f"--requester: unknown user @{requester.lstrip('@')}")
            requester_id = user.id
        decisions = []
        for i in range(0, len(items), batch):
            decisions += screen_prompts(conn=conn, prompts=[it["prompt"] for it in items[i:i + batch]],
                                        settings=settings.rights, requester_id=requester_id,
                                        max_cameos=settings.consent.max_cameos_per_video)
    tmp = dst.with_name(dst.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for item, d in zip(items, decisions):
            fh.write(json.dumps({"id": item["id"], "decision": d.decision,
                                 "matches": [{"holder": m.holder, "work": m.work, "method": m.method, "score": m.score}
                                             for m in d.matches], "reason": d.reason}, ensure_ascii=False) + "\n")
    tmp.replace(dst)  # never a half-written decisions file
    blocked = sum(d.decision == "block" for d in decisions)
    typer.echo(f"screened {len(items)} prompts: {blocked} block, "
               f"{sum(d.decision == 'allow_with_terms' for d in decisions)} allow_with_terms, "
               f"{len(items) - blocked - sum(d.decision == 'allow_with_terms' for d in decisions)} allow -> {dst}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the operational store's schema."""
    from kinora.stores.db import current_revision, get_engine

    settings = _settings()
    engine = get_engine(settings.database_url)
    typer.echo(f"schema at revision {current_revision(engine)}")


@keys_app.command("create")
def keys_create(
    user: str = typer.Option(..., help="Handle of the key's user."),
    name: str = typer.Option("default", help="A label for the key."),
    scope: list[str] = typer.Option(None, help="Scopes (repeat); default: generations:write, generations:read, videos:read."),
    per_day: int = typer.Option(100, help="Generations per UTC day."),
    concurrent: int = typer.Option(4, help="Jobs queued or running at once."),
) -> None:
    """Create an API key and print its secret (once)."""
    from kinora.auth import create_key
    from kinora.stores.bundle import Stores

    settings = _settings()
    try:
        with Stores.open(settings).engine.begin() as conn:
            key_id, secret = create_key(conn=conn, user_handle=user, name=name, scopes=scope or None,
                                        per_day=per_day, max_concurrent=concurrent)
    except ValueError as exc:
        _die(str(exc))
    typer.echo(f"key {key_id} for @{user.lstrip('@')}\n{secret}\n(store it now: only its hash is kept)")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (prefixes only)."""
    from kinora.stores import api_keys as key_store
    from kinora.stores.bundle import Stores

    with Stores.open(_settings()).engine.connect() as conn:
        for k in key_store.list_keys(conn=conn):
            state = "revoked" if k.revoked_at else "active"
            typer.echo(f"{k.id}  {k.prefix}…  {k.user_id}  {state}  {','.join(k.scopes)}  {k.per_day}/day  {k.max_concurrent} at once")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (key_…).")) -> None:
    """Revoke an API key at once."""
    from kinora.stores import api_keys as key_store
    from kinora.stores.bundle import Stores

    with Stores.open(_settings()).engine.begin() as conn:
        if not key_store.revoke_key(conn=conn, key_id=key_id):
            _die(f"no active key {key_id}")
    typer.echo(f"revoked {key_id}")


@app.command("settings")
def show_settings() -> None:
    """Print the resolved settings (secrets hidden)."""
    typer.echo(json.dumps(_settings().redacted(), indent=2))



@consent_app.command("verify-ledger")
def consent_verify_ledger() -> None:
    """Check every consent ledger entry's hash, chain link and signature, and the signed head (exit 1 on any defect)."""
    from kinora.stores.bundle import Stores
    from kinora.trust.ledger import LedgerKey, verify

    settings = _settings()
    stores = Stores.open(settings)
    key = LedgerKey.for_settings(settings)
    with stores.engine.connect() as conn:
        report = verify(conn=conn, public_keys=[key.public])
    if report.ok:
        typer.echo(f"ledger ok: {report.entries} entries, chain and signatures verify (key {key.key_id})")
        return
    for problem in report.problems:
        typer.echo(f"ledger: {problem}", err=True)
    typer.echo(f"error: ledger check failed: {len(report.problems)} problem(s) in {report.entries} entries", err=True)
    raise typer.Exit(1)


@consent_app.command("export")
def consent_export(
    user: str = typer.Argument(..., help="The person's handle."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the JSON here instead of stdout."),
) -> None:
    """Write a person's full consent and usage history as JSON."""
    from kinora.stores.bundle import Stores
    from kinora.trust.export import export_user

    settings = _settings()
    with Stores.open(settings).engine.connect() as conn:
        try:
            data = export_user(conn=conn, handle=user)
        except KeyError as exc:
            _die(exc.args[0])
    text = json.dumps(data, indent=2, default=str)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {out} ({len(data['cameos'])} cameos, {len(data['uses_of_others_cameos'])} uses of others' cameos)")
    else:
        typer.echo(text)


@consent_app.command("sweep")
def consent_sweep_cmd(page: int = typer.Option(1000, min=1, help="Videos checked per batch.")) -> None:
    """Unpublish every live video whose consent no longer holds (the scheduled consent-sweep flow, run now)."""
    from kinora.stores.bundle import Stores
    from kinora.trust.sweep import find_lapsed, withdraw

    settings = _settings()
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        lapsed = find_lapsed(conn=conn, settings=settings, page=page)
        n = withdraw(conn=conn, lapsed=lapsed) if lapsed else 0
    typer.echo(f"consent sweep: {len(lapsed)} lapsed, {n} unpublished")
    for item in lapsed[:20]:
        typer.echo(f"  {item.video_id}: {item.reason}")


@analytics_app.command("refresh")
def analytics_refresh_cmd(
    full: bool = typer.Option(False, "--full", help="Rebuild every day, not only the days whose lake files changed."),
) -> None:
    """Snapshot the catalog and roll up new engagement for the dashboards (the analytics-refresh flow, now)."""
    from dashboards.layer import refresh_all

    report = refresh_all(_settings(), full=full, progress=lambda msg: typer.echo(msg, err=True))
    typer.echo(json.dumps({"refreshed_at": report.refreshed_at, "days_rebuilt": report.days_rebuilt,
                           "days_removed": report.days_removed, "catalog_rows": report.catalog_rows,
                           "ranker_versions": report.models, "seconds": report.seconds}))


@analytics_app.command("metrics")
def analytics_metrics_cmd() -> None:
    """Every metric the dashboards show: name, definition, grain, page."""
    from dashboards.metrics import METRICS

    for m in METRICS:
        typer.echo(f"{m.name}\n  {m.definition}\n  grain: {m.grain}; page: {m.page}")


@events_app.command("import")
def events_import(path: Path = typer.Argument(..., help="Parquet or JSONL with the event contract's fields.")) -> None:
    """Load events into the lake (every row checked first; repeats of ingested event_ids are dropped)."""
    from kinora.events import EventBatchError, ingest, read_event_file, validate
    from kinora.stores.bundle import Stores

    settings = _settings()
    try:
        raw, where = read_event_file(path)
        events = validate(raw)
    except KinoraError as exc:
        _die(str(exc))
    except EventBatchError as exc:
        _die(f"{path}: {where[exc.index]}, field {exc.field}: {exc.message}")
    stores = Stores.open(settings)
    accepted = duplicates = 0
    step = settings.events.import_batch
    for i in range(0, len(events), step):
        result = ingest(engine=stores.engine, lake=stores.lake, events=events[i:i + step])
        accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
    typer.echo(f"imported {accepted} events from {path} ({duplicates} already ingested or repeated)")


# ----------------------------------------------------------------------------------------- ranking
def _ranking_errors():
    from kinora.ranking.registry import RegistryError
    from kinora.ranking.snapshot import DataQualityError

    return (KinoraError, RegistryError, DataQualityError, ValueError, FileNotFoundError)


def _echo_json(doc: dict) -> None:
    typer.echo(json.dumps(doc, indent=2, default=str))


@ranking_app.command("train")
def ranking_train(
    events: Path = typer.Option(..., "--events", help="Events (Parquet or JSONL file, or a folder of them)."),
    videos: Path = typer.Option(..., "--videos", help="Videos: video_id, creator_id, prompt, duration_ms, published_at."),
    out: Path = typer.Option(None, "--out", help="Write the version here instead of the registry."),
    trainer: str = typer.Option("local", "--trainer", help="'local' or 'ray' (Ray Train, one worker locally)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also measure the baselines (LightGBM takes the longest)."),
) -> None:
    """Check the data, build features, train the multi-task ranker, evaluate it; print its card as JSON."""
    import datetime as dt

    from kinora.ranking.pipeline import train_model
    from kinora.ranking.snapshot import gate_files

    settings = _settings()
    report_dir = settings.home / "ranking" / "quality" / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    try:
        gate_files(events, videos, report_dir)
        folder, card = train_model(events, videos, settings, out=out, trainer=trainer, with_baselines=baselines,
                                   progress=lambda m: typer.echo(m, err=True))
    except _ranking_errors() as exc:
        _die(str(exc))
    _echo_json({"version": card["version"], "path": str(folder), "metrics": card["metrics"], "timings": card["timings"]})


@ranking_app.command("evaluate")
def ranking_evaluate(
    model: str = typer.Option(..., "--model", help="A version, 'production', or a version folder."),
    events: Path = typer.Option(..., "--events"),
    videos: Path = typer.Option(..., "--videos"),
    baselines: bool = typer.Option(False, "--baselines/--no-baselines", help="Also measure the baselines on the same holdout."),
) -> None:
    """NDCG@10, AUC and calibration per head on the time-based holdout of EVENTS, as JSON."""
    from kinora.ranking.pipeline import evaluate_model

    settings = _settings()
    try:
        _echo_json(evaluate_model(model, events, videos, settings, with_baselines=baselines))
    except _ranking_errors() as exc:
        _die(str(exc))


@ranking_app.command("score")
def ranking_score(
    model: str = typer.Option(..., "--model"),
    events: Path = typer.Option(..., "--events", help="The history the features come from."),
    videos: Path = typer.Option(..., "--videos"),
    pairs: Path = typer.Option(..., "--pairs", help="Parquet with user_id, video_id."),
    out: Path = typer.Option(..., "--out", help="Parquet written: user_id, video_id, score, p_<head>."),
) -> None:
    """Score every (user_id, video_id) pair of PAIRS as of the end of the history."""
    from kinora.ranking.pipeline import score_pairs

    settings = _settings()
    try:
        n = score_pairs(model, events, videos, pairs, out, settings)
    except _ranking_errors() as exc:
        _die(str(exc))
    typer.echo(f"scored {n} pairs into {out}")


@ranking_app.command("promote")
def ranking_promote(
    version: str = typer.Argument(..., help="The version to put in production."),
    events: Path = typer.Option(None, "--events", help="With --videos: gate against production on this history's holdout."),
    videos: Path = typer.Option(None, "--videos"),
    force: bool = typer.Option(False, "--force", help="Skip the gate (recorded as forced)."),
) -> None:
    """Put a version in production, if it passes the gate (or --force)."""
    from kinora.ranking.pipeline import gate_and_promote
    from kinora.ranking.registry import Registry

    settings = _settings()
    reg = Registry(settings.ranking_dir)
    try:
        if force:
            reg.promote(version, "forced by operator")
            typer.echo(f"{version} is in production (forced, gate skipped)")
            return
        if events is None or videos is None:
            _die("name --events and --videos to gate the version against production, or pass --force")
        result = gate_and_promote(reg.path(version), events, videos, settings)
    except _ranking_errors() as exc:
        _die(str(exc))
    _echo_json(result)
    if not result["promoted"]:
        raise typer.Exit(1)


@ranking_app.command("rollback")
def ranking_rollback() -> None:
    """Put back the version that was in production before the current one."""
    from kinora.ranking.registry import Registry

    settings = _settings()
    try:
        doc = Registry(settings.ranking_dir).rollback()
    except _ranking_errors() as exc:
        _die(str(exc))
    typer.echo(f"rolled back: {doc['production']} is in production again")


@ranking_app.command("list")
def ranking_list() -> None:
    """Versions in the registry with their NDCG@10; production marked."""
    from kinora.ranking.registry import Registry

    settings = _settings()
    reg = Registry(settings.ranking_dir)
    prod = reg.production()
    for v in reg.list():
        card = reg.card(v)
        mark = "*" if v == prod else " "
        typer.echo(f"{mark} {v}  ndcg@10={card['metrics']['ndcg@10']}  data={card['lineage']['data_fingerprint']}")


if __name__ == "__main__":
    app()
