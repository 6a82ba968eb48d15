"""--trainer ray: the training step through Ray Train (one worker, on the session's local Ray)."""

from __future__ import annotations

import torch

from kinora.ranking import data, pipeline
from kinora.ranking.model import train


def test_ray_train_gives_the_local_trainers_model(sim_files, rank_settings, serve_app):
    ds = pipeline.dataset(sim_files["events"], sim_files["videos"], rank_settings)
    n = 20_000
    X, labels = ds.train["X"][:n], {k: ds.train[k][:n] for k in data.HEADS}
    params = {"hidden": [32, 16], "epochs": 1, "batch_size": 512, "learning_rate": 2e-3, "seed": 4, "threads": 1}
    from kinora.ranking.ray_trainer import train_on_ray

    remote, log = train_on_ray(X, labels, params, rank_settings)
    local, _ = train(X, labels, **params)
    assert log["ray_workers"] == 1 and log["train_rows"] == n
    for (name, a), b in zip(remote.state_dict().items(), local.state_dict().values()):
        assert torch.equal(a, b), name  # same data, order and kernels: the same weights
