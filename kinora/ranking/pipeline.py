"""Train, evaluate, score, gate: the steps the CLI and the retrain flow share.

    history (events, videos) -> features (point in time, time-based holdout)
      -> train the multi-task ranker (here, or on Ray Train)
      -> evaluate on the holdout against most popular, recent popular and LightGBM LambdaRank
      -> save a version with its card (lineage, parameters, metrics)
    gate: a candidate is promoted only if it beats production on the same holdout by
    ``promote_margin`` NDCG@10 and no head's AUC drops by more than ``max_head_regression``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import numpy as np
import polars as pl

from kinora.ranking import data, evaluate, features
from kinora.ranking.model import combine, predict, train
from kinora.ranking.registry import Registry, RegistryError, code_version, load, new_version, save
from kinora.settings import Settings

logger = logging.getLogger(__name__)

_EMBED_CACHE: dict[int, np.ndarray] = {}


def _embeddings(videos: pl.DataFrame, settings: Settings) -> np.ndarray:
    """Prompt embeddings, cached per distinct video list within a process (evaluate + gate share them)."""
    key = hash(tuple(videos["prompt"].to_list()))
    if key not in _EMBED_CACHE:
        r = settings.rights
        _EMBED_CACHE.clear()
        _EMBED_CACHE[key] = features.embed_prompts(
            videos["prompt"].to_list(), model_dir=str(r.embedding_model_dir) if r.embedding_model_dir else None,
            threads=max(1, settings.ranking.torch_threads), precision=r.embedding_precision)
    return _EMBED_CACHE[key]


def dataset(events: Path, videos: Path, settings: Settings, *, text: features.TextFeatures | None = None,
            progress=None) -> features.Dataset:
    r = settings.ranking
    ev, vids = data.scan_events(events), data.read_videos(videos)
    return features.build(ev, vids, decay_days=r.decay_days, recent_half_life=r.recent_half_life_days,
                          text_dims=r.text_dims, holdout_days=r.holdout_days, max_train_rows=r.max_train_rows,
                          embeddings=_embeddings(vids, settings), text=text, progress=progress)


def metrics_for(model, ds: features.Dataset, settings: Settings) -> dict:
    """NDCG@10 and per-head AUC/calibration of ``model`` on the holdout of ``ds``."""
    h = ds.holdout
    if len(h["grade"]) == 0:
        raise ValueError("the holdout is empty: the history must span more than holdout_days")
    probs = predict(model, h["X"])
    labels = {k: h[k] for k in data.HEADS}
    return {"ndcg@10": round(evaluate.ndcg_at_k(h["request"], h["grade"], combine(probs, settings.ranking.head_weights)), 5),
            "heads": evaluate.head_metrics(probs, labels), "holdout_impressions": int(len(h["grade"])),
            "holdout_requests": int(len(np.unique(h["request"])))}


def baselines(ds: features.Dataset, settings: Settings, *, lightgbm: bool = True) -> dict:
    h, r = ds.holdout, settings.ranking
    jitter = np.random.default_rng(r.seed).random(len(h["grade"])) * 1e-6
    out = {"most_popular": {"ndcg@10": round(evaluate.ndcg_at_k(h["request"], h["grade"], h["popular"] + jitter), 5)},
           "recent_popular": {"ndcg@10": round(evaluate.ndcg_at_k(h["request"], h["grade"], h["recent"] + jitter), 5)}}
    if lightgbm:
        scores, seconds = evaluate.lightgbm_lambdarank(ds.train, h, rounds=r.lightgbm_rounds, seed=r.seed,
                                                       threads=r.torch_threads)
        out["lightgbm_lambdarank"] = {"ndcg@10": round(evaluate.ndcg_at_k(h["request"], h["grade"], scores), 5),
                                      "train_s": round(seconds, 2)}
    return out


def fit(ds: features.Dataset, settings: Settings, *, trainer: str = "local", progress=None):
    """Train the multi-task ranker on the training days of ``ds`` (here, or through Ray Train)."""
    say = progress or (lambda msg: logger.info(msg))
    r = settings.ranking
    if len(ds.train["grade"]) == 0:
        raise ValueError("no training impressions before the holdout: the history is too short")
    labels = {k: ds.train[k] for k in data.HEADS}
    params = {"hidden": r.hidden, "epochs": r.epochs, "batch_size": r.batch_size, "learning_rate": r.learning_rate,
              "seed": r.seed, "threads": r.torch_threads}
    if trainer == "ray":
        from kinora.ranking.ray_trainer import train_on_ray

        model, log = train_on_ray(ds.train["X"], labels, params, settings, progress=say)
    elif trainer == "local":
        model, log = train(ds.train["X"], labels, progress=say, **params)
    else:
        raise ValueError(f"trainer: 'local' or 'ray', not {trainer!r}")
    return model, log | {"trainer": trainer, "params": params}


def assess(model, ds: features.Dataset, settings: Settings, *, with_baselines: bool = True) -> dict:
    metrics = metrics_for(model, ds, settings)
    if with_baselines:
        metrics["baselines"] = baselines(ds, settings)
    return metrics


def save_version(model, ds: features.Dataset, log: dict, metrics: dict, settings: Settings, *, events: Path, videos: Path,
                 timings: dict, out: Path | None = None) -> tuple[Path, dict]:
    """Write a version (not promoted) with its card: lineage, parameters, metrics."""
    r = settings.ranking
    version = new_version()
    card = {
        "version": version, "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "lineage": {"data_fingerprint": ds.fingerprint, "events": str(events), "videos": str(videos),
                    "code_version": code_version(), "trainer": log["trainer"],
                    "holdout_start": ds.holdout_start.isoformat(),
                    "snapshot_as_of": dt.datetime.fromtimestamp(ds.state.as_of_us / 1e6, dt.timezone.utc).isoformat()},
        "params": log["params"] | {"decay_days": r.decay_days, "text_dims": r.text_dims, "holdout_days": r.holdout_days,
                                   "head_weights": r.head_weights},
        "features": ds.features, "metrics": metrics,
        "training": {k: v for k, v in log.items() if k not in {"params", "trainer"}}, "timings": timings,
        "train_impressions": int(len(ds.train["grade"])),
    }
    folder = Path(out) / version if out else Registry(settings.ranking_dir).versions / version
    save(folder, model=model, text=ds.text, state=ds.state, catalog=ds.catalog, card=card)
    return folder, card


def train_model(events: Path, videos: Path, settings: Settings, *, out: Path | None = None, trainer: str = "local",
                with_baselines: bool = True, progress=None) -> tuple[Path, dict]:
    """Build features, train, evaluate, save a version (not promoted). Returns its folder and card."""
    say = progress or (lambda msg: logger.info(msg))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = dataset(events, videos, settings, progress=say)
    timings["features_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    model, log = fit(ds, settings, trainer=trainer, progress=say)
    timings["train_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    metrics = assess(model, ds, settings, with_baselines=with_baselines)
    timings["evaluate_s"] = round(time.perf_counter() - t0, 2)
    folder, card = save_version(model, ds, log, metrics, settings, events=events, videos=videos, timings=timings, out=out)
    say(f"saved {card['version']} to {folder}")
    return folder, card


def evaluate_model(model_ref: str | Path, events: Path, videos: Path, settings: Settings, *,
                   with_baselines: bool = False) -> dict:
    """Metrics of a saved version on the holdout of (events, videos), built with the version's own
    text projection so it sees the features it was trained on."""
    bundle = load(Registry(settings.ranking_dir).resolve(model_ref))
    ds = dataset(events, videos, settings, text=bundle.text)
    out = {"version": bundle.version} | metrics_for(bundle.model, ds, settings)
    if with_baselines:
        out["baselines"] = baselines(ds, settings)
    return out


def gate(candidate: dict, production: dict | None, settings: Settings) -> tuple[bool, list[str]]:
    """Whether ``candidate`` may replace ``production`` (both measured on the same holdout)."""
    r = settings.ranking
    if production is None:
        best = max((b["ndcg@10"] for b in candidate.get("baselines", {}).values()), default=None)
        if best is not None and candidate["ndcg@10"] <= best:
            return False, [f"NDCG@10 {candidate['ndcg@10']} does not beat the best baseline ({best})"]
        return True, ["no model in production; the candidate beats every baseline measured"]
    reasons, ok = [], True
    need = production["ndcg@10"] + r.promote_margin
    if candidate["ndcg@10"] < need:
        ok = False
        reasons.append(f"NDCG@10 {candidate['ndcg@10']} < production {production['ndcg@10']} + margin {r.promote_margin}")
    else:
        reasons.append(f"NDCG@10 {candidate['ndcg@10']} >= production {production['ndcg@10']} + margin {r.promote_margin}")
    for head, m in candidate["heads"].items():
        before = production["heads"].get(head, {}).get("auc")
        if before is None or np.isnan(before) or np.isnan(m["auc"]):
            continue
        if m["auc"] < before - r.max_head_regression:
            ok = False
            reasons.append(f"head {head}: AUC {m['auc']} regressed past {before} - {r.max_head_regression}")
    return ok, reasons


def gate_and_promote(candidate_dir: Path, events: Path, videos: Path, settings: Settings) -> dict:
    """Evaluate the candidate and production on the same holdout; promote the candidate if it passes."""
    reg = Registry(settings.ranking_dir)
    cand_card = load(candidate_dir).card
    cand = evaluate_model(candidate_dir, events, videos, settings)
    cand["baselines"] = cand_card["metrics"].get("baselines", {})
    prod_version = reg.production()
    prod = evaluate_model(prod_version, events, videos, settings) if prod_version else None
    ok, reasons = gate(cand, prod, settings)
    result = {"candidate": cand_card["version"], "production": prod_version, "promoted": False, "reasons": reasons,
              "candidate_metrics": {"ndcg@10": cand["ndcg@10"]},
              "production_metrics": {"ndcg@10": prod["ndcg@10"]} if prod else None}
    if ok:
        if Path(candidate_dir).resolve().parent != reg.versions.resolve():
            raise RegistryError(f"{candidate_dir} is not in the registry ({reg.versions}); train without --out")
        reg.promote(cand_card["version"], "; ".join(reasons))
        result["promoted"] = True
    return result


def score_pairs(model_ref: str | Path, events: Path, videos: Path, pairs: Path, out: Path, settings: Settings) -> int:
    """Score every (user_id, video_id) of ``pairs`` with the features (events, videos) give as of
    their end; write user_id, video_id, score and each head's probability to ``out``."""
    from kinora.errors import InputFileError

    bundle = load(Registry(settings.ranking_dir).resolve(model_ref))
    pairs = Path(pairs)
    if not pairs.is_file():
        raise InputFileError(pairs, "", "file not found")
    try:
        p = pl.read_parquet(pairs, columns=["user_id", "video_id"])
    except Exception as exc:  # noqa: BLE001 - polars raises several kinds for a broken or wrong file
        raise InputFileError(pairs, "user_id, video_id", f"not a Parquet file with these columns ({type(exc).__name__})") from None
    r = settings.ranking
    ev, vids = data.scan_events(events), data.read_videos(videos)
    full = features.build(ev, vids, decay_days=r.decay_days, recent_half_life=r.recent_half_life_days,
                          text_dims=len(bundle.text.components), holdout_days=0.0, max_train_rows=1,
                          embeddings=_embeddings(vids, settings), text=bundle.text, examples=False)
    X = matrix_for(full.state, full.catalog, p["user_id"].to_numpy().astype(str), p["video_id"].to_numpy().astype(str),
                   as_of_us=full.state.as_of_us)
    probs = predict(bundle.model, X)
    frame = p.with_columns(pl.Series("score", combine(probs, r.head_weights)),
                           *[pl.Series(f"p_{h}", probs[:, j]) for j, h in enumerate(data.HEADS)])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out)
    return frame.height


def matrix_for(state: features.FeatureState, cat: features.Catalog, users: np.ndarray, videos: np.ndarray, *,
               as_of_us: int) -> np.ndarray:
    """Features of (user, video) pairs by id against a snapshot; unknown ids get the zero rows."""
    u = np.array([cat.user_index.get(x, len(cat.users)) for x in users], np.int64)
    v, c, known, dur = features.locate_videos(cat, list(videos))
    p = features.pair_index(state.pair_keys, u, c, len(cat.creators))
    age = np.where(known, (as_of_us - cat.video_published_us[np.minimum(v, len(cat.videos) - 1)]) / features.DAY_US, 0.0)
    return features.assemble(state, u, v, c, p, video_text=state.video_text[v], age_days=age, duration_s=dur)
