"""The multi-task ranker: one shared MLP tower, one head per engagement outcome.

Heads predict the probability of each outcome of showing a video to a user: ``watch`` (the
share watched, trained as a soft label), ``like``, ``share``, ``remix`` and ``negative``
(skip, hide or report). The feed's score is a weighted sum of the head probabilities with the
weights in settings (``ranking.head_weights``), as the heavy rankers of the large feeds do: the
weights say what the platform values (here creation and connection over passive watching), the
heads say what will happen, and the two can change independently.

Training is deterministic on the CPU for a fixed seed: the sampling, initialisation and batch
order all come from that seed, and torch runs its deterministic kernels.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from kinora.ranking.data import HEADS

logger = logging.getLogger(__name__)


class MultiTaskRanker(nn.Module):
    def __init__(self, n_features: int, hidden: list[int], mean: np.ndarray | None = None,
                 std: np.ndarray | None = None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean if mean is not None else np.zeros(n_features), dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std if std is not None else np.ones(n_features), dtype=torch.float32))
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.tower = nn.Sequential(*layers)
        self.heads = nn.Linear(width, len(HEADS))  # one logit per head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.tower((x - self.mean) / self.std))


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = x.std(axis=0, dtype=np.float64).astype(np.float32)
    return mean, np.where(std < 1e-6, 1.0, std).astype(np.float32)


def train(X: np.ndarray, labels: dict[str, np.ndarray], *, hidden: list[int], epochs: int, batch_size: int,
          learning_rate: float, seed: int, threads: int, progress=None, wrap=None) -> tuple[MultiTaskRanker, dict]:
    """Fit the ranker on features ``X`` and the head labels; return it and the training log.

    ``wrap``: applied to the model before training (Ray Train's ``prepare_model``, which makes it
    DistributedDataParallel when there are several workers)."""
    say = progress or (lambda msg: logger.info(msg))
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    mean, std = _standardise(X)
    model = MultiTaskRanker(X.shape[1], hidden, mean, std)
    y = np.stack([labels[h] for h in HEADS], axis=1).astype(np.float32)
    xt, yt = torch.from_numpy(np.ascontiguousarray(X, np.float32)), torch.from_numpy(y)
    # Rare heads (remix, share) would otherwise be drowned by the frequent ones: weight each head's
    # loss by 1 / sqrt(positive rate), normalised, so every outcome shapes the tower.
    rate = np.clip(y.mean(axis=0), 1e-4, 1.0)
    head_w = torch.as_tensor((1 / np.sqrt(rate)) / (1 / np.sqrt(rate)).mean(), dtype=torch.float32)
    net = wrap(model) if wrap else model
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    gen = torch.Generator().manual_seed(seed)
    n = len(xt)
    # at least ~200 steps per epoch: small histories (the demo's, the tests') need smaller batches
    batch_size = max(64, min(batch_size, n // 200 or 64))
    history = []
    started = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total, batches = 0.0, 0
        net.train()
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            loss = (loss_fn(net(xt[idx]), yt[idx]).mean(dim=0) * head_w).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        history.append(round(total / max(1, batches), 5))
        say(f"epoch {epoch + 1}/{epochs}: loss {history[-1]}")
    model.eval()
    return model, {"loss_per_epoch": history, "train_rows": n, "batch_size": batch_size,
                   "train_s": round(time.perf_counter() - started, 2),
                   "head_loss_weights": [round(float(w), 4) for w in head_w]}


@torch.inference_mode()
def predict(model: MultiTaskRanker, X: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """Head probabilities [N, len(HEADS)]."""
    out = [torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(X[i:i + batch], np.float32)))).numpy()
           for i in range(0, len(X), batch)]
    return np.concatenate(out) if out else np.zeros((0, len(HEADS)), np.float32)


def combine(probs: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    """The feed score: sum over heads of weight x probability."""
    w = np.array([weights.get(h, 0.0) for h in HEADS], np.float32)
    return probs @ w
