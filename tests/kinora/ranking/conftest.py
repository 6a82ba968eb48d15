"""One small simulated history for every ranking test (a few seconds to build and to train on)."""

from __future__ import annotations

import pytest

from datasets.simulator import SimConfig, build_world, simulate


@pytest.fixture(scope="session")
def sim_files(tmp_path_factory):
    """events.parquet and videos.parquet of a 9-day simulated history (about 90k events)."""
    folder = tmp_path_factory.mktemp("sim")
    world = build_world(SimConfig(users=800, creators=60, videos=1500, days=9, seed=11))
    events = simulate(world, seed=2)
    events.write_parquet(folder / "events.parquet")
    world.videos_frame().write_parquet(folder / "videos.parquet")
    return {"events": folder / "events.parquet", "videos": folder / "videos.parquet", "world": world,
            "frame": events}


@pytest.fixture
def rank_settings(settings):
    """Per-test home; small, quick training (2 epochs, LightGBM 30 rounds)."""
    from kinora.settings import Settings

    return Settings(home=settings.home, ranking={"epochs": 2, "lightgbm_rounds": 30, "batch_size": 1024})
