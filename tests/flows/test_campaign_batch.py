"""The Ray Data batch campaign (flows/campaign_batch.py) through `kinora campaign run --engine ray-data`.

Each run is a CLI process of its own with a local Ray (this session may already hold one, and Ray
allows one driver per process), on a seeded data home of its own, against the session's Prefect
harness. The multi-node run of the same flow is in tests/serving/test_ray_cluster.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from kinora.stores import jobs as job_store
from kinora.stores.bundle import Stores

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = """name: batch-small
requester: studio
defaults: {duration_s: 1, resolution: 256x256, seed: 5}
items:
  - {id: harbour, prompt: A sunrise over a quiet harbour, count: 2}
  - {id: alice, prompt: "@alice dancing in the rain", cameos: [alice]}
  - {id: zed, prompt: "@zed juggling oranges", cameos: [zed]}
  - {id: comet, prompt: Captain Comet surfing a giant wave at dusk}
"""


def _cli(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, "-m", "kinora.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    return proc, json.loads(out[out.index("{\n"):])  # the summary is the last thing printed


@pytest.fixture(scope="module")
def runs(prefect_harness, tmp_path_factory):
    """Seed a home, run the campaign on Ray Data, then run it again; return both summaries and the settings."""
    from prefect.settings import PREFECT_API_URL

    from kinora.seed import seed
    from kinora.settings import Settings

    home = tmp_path_factory.mktemp("batch") / "home"
    settings = Settings(home=home)
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
    campaign = home / "campaign.yaml"
    campaign.write_text(CAMPAIGN)
    ray_tmp = tempfile.mkdtemp(prefix="kbt-", dir="/tmp")  # a private Ray temp folder (short: socket paths)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KINORA_", "RAY_"))}
    env.update({
        "KINORA_HOME": str(home), "KINORA_SERVE__METRICS_EXPORT_PORT": "18225",
        "KINORA_CAMPAIGN__BATCH_SIZE": "2", "KINORA_CAMPAIGN__BATCH_ACTORS": "1",
        "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": ray_tmp, "PREFECT_API_URL": PREFECT_API_URL.value(),
    })
    try:
        first = _cli(["campaign", "run", "--engine", "ray-data", "--json", str(campaign)], env)[1]
        again = _cli(["campaign", "run", "--engine", "ray-data", "--json", str(campaign)], env)[1]
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    print("batch campaign:", {k: first[k] for k in ("published", "total_seconds", "generation_seconds", "videos_per_s",
                                                   "generated_per_s", "actor_busy_seconds", "stage_seconds")})
    return first, again, settings


def test_every_allowed_request_is_published_once_and_the_blocked_are_refused(runs):
    first, _, settings = runs
    assert first["engine"] == "ray-data"
    assert (first["requested"], first["generated"], first["published"], first["failed"]) == (5, 3, 3, 0)
    assert (first["blocked_consent"], first["blocked_rights"]) == (1, 1)
    reasons = {r["prompt"]: (r["stage"], r["reason"]) for r in first["refusals"]}
    assert reasons["@zed juggling oranges"] == ("consent", "unknown cameo @zed")
    assert reasons["Captain Comet surfing a giant wave at dusk"][0] == "rights"
    assert "Captain Comet (Moonbeam Studios)" in reasons["Captain Comet surfing a giant wave at dusk"][1]
    assert len(set(first["video_ids"])) == 3
    assert first["actors"] == 1 and first["batch_size"] == 2 and first["num_gpus_per_actor"] == 0.0
    assert sum(first["nodes"].values()) == 3 and len(first["nodes"]) == 1  # one local node made all three
    assert first["devices"] == ["cpu"]

    stores = Stores.open(settings)
    with stores.engine.connect() as conn:
        rows = job_store.list_jobs(conn=conn, campaign_id="batch-small")
        videos = conn.execute(sa.text("SELECT id, job_id, media_key, sha256, published_at FROM videos "
                                      "WHERE campaign_id = 'batch-small'")).fetchall()
    assert len(rows) == 5
    jobs = {j.prompt: j for j in rows}
    assert jobs["@zed juggling oranges"].status == "blocked"
    assert jobs["@zed juggling oranges"].reason == "consent: unknown cameo @zed"
    assert jobs["Captain Comet surfing a giant wave at dusk"].status == "blocked"
    assert jobs["Captain Comet surfing a giant wave at dusk"].reason.startswith("rights: ")
    assert sorted(j.status for j in rows) == ["blocked", "blocked", "succeeded", "succeeded", "succeeded"]
    assert sorted(j.video_id for j in rows if j.status == "succeeded") == sorted(first["video_ids"])
    assert sorted(v.id for v in videos) == sorted(first["video_ids"])
    assert len({v.job_id for v in videos}) == 3 and all(v.published_at is not None for v in videos)
    for v in videos:  # stamped files in the media store, as the catalog says
        assert hashlib.sha256(stores.media.path(v.media_key).read_bytes()).hexdigest() == v.sha256


def test_the_cameo_video_names_its_cameo_and_was_conditioned_in_the_actor(runs):
    from kinora.stores import cameos as cameo_store
    from kinora.stores.schema import videos

    _, _, settings = runs
    with Stores.open(settings).engine.connect() as conn:
        row = conn.execute(sa.select(videos.c.cameo_ids, videos.c.creator_id)
                           .where(videos.c.campaign_id == "batch-small", videos.c.prompt == "@alice dancing in the rain")).one()
        alice = cameo_store.get_cameo_by_handle(conn=conn, handle="alice")
    assert row.cameo_ids == [alice.id]


def test_the_throughput_is_consistent_with_the_count_and_the_time(runs):
    first, _, _ = runs
    assert first["total_seconds"] > 0 and 0 < first["generation_seconds"] <= first["total_seconds"]
    assert first["videos_per_s"] > 0
    assert first["videos_per_s"] == pytest.approx(first["published"] / first["total_seconds"], rel=0.01)
    assert first["generated_per_s"] == pytest.approx(first["generated"] / first["generation_seconds"], rel=0.01)
    stages = first["stage_seconds"]
    assert set(stages) == {"consent", "rights", "generate", "stamp", "publish"}
    assert stages["generate"] > 0 and stages["stamp"] > 0 and stages["publish"] > 0
    assert sum(stages.values()) <= first["total_seconds"]
    assert 0 < first["actor_busy_seconds"] <= first["generation_seconds"]


def test_a_rerun_publishes_nothing_new(runs):
    first, again, settings = runs
    assert (again["requested"], again["already_published"], again["published"], again["generated"]) == (5, 3, 0, 0)
    assert (again["blocked_consent"], again["blocked_rights"], again["failed"]) == (1, 1, 0)
    assert again["video_ids"] == [] and again["actors"] == 0 and again["nodes"] == {}
    assert again["videos_per_s"] == 0.0
    with Stores.open(settings).engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM videos WHERE campaign_id = 'batch-small'")).scalar_one()
    assert n == 3


def test_an_unknown_engine_is_one_line_and_starts_nothing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from kinora.cli import app

    monkeypatch.setenv("KINORA_HOME", str(tmp_path / "h"))
    f = tmp_path / "c.yaml"
    f.write_text(CAMPAIGN)
    result = CliRunner().invoke(app, ["campaign", "run", "--engine", "spark", str(f)])
    assert result.exit_code == 2
    assert "error: --engine: 'spark' is not one of 'serve', 'ray-data'" in result.output
    assert not (tmp_path / "h").exists()  # refused before any store, Ray or Prefect
