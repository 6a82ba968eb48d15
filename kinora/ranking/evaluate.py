"""Offline evaluation on the time-based holdout, and the baselines measured in the same run.

Metrics:

- **NDCG@10** per feed request, graded by engagement (see :mod:`kinora.ranking.data`; gain
  ``2**grade - 1``), averaged over requests where something was engaged with. The ranker
  re-orders the impressions each request logged, the standard offline replay.
- **AUC** per head (scikit-learn), on every holdout impression; ``watch`` is judged as "watched
  at least half".
- **Calibration** per head: mean prediction over observed rate, and the expected calibration
  error over ten equal-width bins.

Baselines: **most popular** (all-time views before the request), **recent popular** (views
with a one-day half-life), and **LightGBM LambdaRank** trained on the same features and the
same training days, grouped by request.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import polars as pl

from kinora.ranking.data import HEADS

logger = logging.getLogger(__name__)


def ndcg_at_k(requests: np.ndarray, grades: np.ndarray, scores: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over requests with at least one graded item (ties broken by original order)."""
    df = pl.DataFrame({"r": requests, "g": grades.astype(np.int32), "s": scores.astype(np.float64),
                       "i": np.arange(len(grades))})
    gain = (2.0 ** pl.col("g") - 1.0)
    ranked = df.sort(["r", "s", "i"], descending=[False, True, False]).with_columns(
        pl.int_range(pl.len()).over("r").alias("rank"))
    dcg = ranked.filter(pl.col("rank") < k).group_by("r").agg((gain / (pl.col("rank") + 2.0).log(2)).sum().alias("dcg"))
    ideal = df.sort(["r", "g"], descending=[False, True]).with_columns(pl.int_range(pl.len()).over("r").alias("rank"))
    idcg = ideal.filter(pl.col("rank") < k).group_by("r").agg((gain / (pl.col("rank") + 2.0).log(2)).sum().alias("idcg"))
    both = dcg.join(idcg, on="r").filter(pl.col("idcg") > 0)
    return float((both["dcg"] / both["idcg"]).mean()) if both.height else 0.0


def head_metrics(probs: np.ndarray, labels: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    from sklearn.metrics import roc_auc_score

    out = {}
    for j, h in enumerate(HEADS):
        y = labels[h] >= 0.5 if h == "watch" else labels[h] > 0
        p = probs[:, j]
        auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
        bins = np.minimum((p * 10).astype(int), 9)
        target = labels[h].astype(np.float64)
        ece = 0.0
        for b in range(10):
            m = bins == b
            if m.any():
                ece += m.mean() * abs(p[m].mean() - target[m].mean())
        out[h] = {"auc": round(auc, 4), "mean_pred_over_observed": round(float(p.mean() / max(target.mean(), 1e-9)), 3),
                  "ece": round(float(ece), 4)}
    return out


def lightgbm_lambdarank(train: dict[str, np.ndarray], holdout: dict[str, np.ndarray], *, rounds: int, seed: int,
                        threads: int) -> tuple[np.ndarray, float]:
    """Train LambdaRank on the training requests; return holdout scores and the seconds it took."""
    import lightgbm as lgb

    started = time.perf_counter()
    order = np.argsort(train["request"], kind="stable")
    req = train["request"][order]
    _, counts = np.unique(req, return_counts=True)
    dtrain = lgb.Dataset(train["X"][order], label=train["grade"][order].astype(np.int32), group=counts,
                         free_raw_data=True)
    params = {"objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10], "learning_rate": 0.1,
              "num_leaves": 31, "min_data_in_leaf": 50, "label_gain": [0, 1, 3, 7, 15], "seed": seed,
              "deterministic": True, "num_threads": threads, "verbose": -1, "force_row_wise": True}
    booster = lgb.train(params, dtrain, num_boost_round=rounds)
    return booster.predict(holdout["X"], num_threads=threads), time.perf_counter() - started
