"""The training step through Ray Train: the same loop as :func:`kinora.ranking.model.train`, run
by a ``TorchTrainer`` (one worker on a laptop, as many as the cluster has with
``ranking.ray_workers``). The features travel through Ray's object store; the trained weights come
back as a checkpoint.

With one worker the result equals the local trainer's for the same seed (same data, same
order, same kernels). With several, each worker takes an equal slice of the rows and
PyTorch DDP averages the gradients.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from kinora.ranking.model import MultiTaskRanker, train
from kinora.settings import Settings


def _loop(config: dict) -> None:
    import ray.train
    from ray.train import Checkpoint

    X = config["X"]
    labels = config["labels"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    wrap = None
    if world > 1:  # each worker an equal slice (DDP needs the same number of steps everywhere)
        from ray.train.torch import prepare_model

        n = len(X) // world
        X = X[rank::world][:n]
        labels = {k: v[rank::world][:n] for k, v in labels.items()}
        wrap = prepare_model
    model, log = train(X, labels, wrap=wrap, **config["params"])
    metrics = {"loss": log["loss_per_epoch"][-1], "train_s": log["train_s"]}
    if rank == 0:
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(model.state_dict(), Path(tmp) / "model.pt")
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))
    else:
        ray.train.report(metrics)


def train_on_ray(X: np.ndarray, labels: dict[str, np.ndarray], params: dict, settings: Settings, progress=None):
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from serving.runtime import ensure_ray

    ensure_ray(settings)
    say = progress or (lambda msg: None)
    workers = settings.ranking.ray_workers
    say(f"training through Ray Train with {workers} worker(s)")
    storage = Path(tempfile.mkdtemp(prefix="kinora-raytrain-"))
    trainer = TorchTrainer(
        _loop,
        train_loop_config={"X": X, "labels": labels, "params": params},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False,
                                     resources_per_worker={"CPU": settings.ranking.ray_cpus_per_worker}),
        run_config=RunConfig(storage_path=str(storage), name="kinora-ranker"),
    )
    result = trainer.fit()
    if result.error:
        raise RuntimeError(f"Ray Train failed: {result.error}")
    model = MultiTaskRanker(X.shape[1], params["hidden"])
    with result.checkpoint.as_directory() as d:
        model.load_state_dict(torch.load(Path(d) / "model.pt", weights_only=True))
    model.eval()
    return model, {"loss_per_epoch": [result.metrics["loss"]], "train_s": result.metrics["train_s"],
                   "train_rows": int(len(X)), "ray_workers": workers}
