"""Benchmark: rights screening on the labelled evaluation set (``datasets/rights_eval/prompts.jsonl``).

    .venv/bin/python benchmarks/rights.py [--no-embedding] [--repeat 2]

Loads the seed registry (``datasets/seed/rights.csv``, 30 works) into a temporary store, pins the
process to one core (one torch thread), and screens every prompt of the evaluation set:

* quality: block recall on the prompts labelled ``block`` (per technique too), false-block rate
  on those labelled ``allow``, and whether each reference to an allowed work was recognised
  (``allow_with_terms``);
* speed: prompts per second screening the whole set in batches (``--batch``), and p50/p99 latency
  screening one prompt at a time. Baselines in the same run: the same without the embedding check
  (lexical stages only), so the ratio is what the sentence-embedding model costs; and the same
  with the model in fp32 throughout (by default batches run in bfloat16 on CPUs with bf16 units,
  such as this machine's AMX; single prompts stay fp32).

Thresholds and rules were chosen on this same set: read its quality figures as what the set
shows, not as a generalisation bound. ``holdout`` in the output is the same quality report on
``datasets/rights_eval/holdout.jsonl``, prompts written after the tuning and never used to change
the screener (see its HOLDOUT.md). The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT / "datasets" / "rights_eval" / "prompts.jsonl"
HOLDOUT = ROOT / "datasets" / "rights_eval" / "holdout.jsonl"


def _measure(conn, settings, items, batch: int, singles: int) -> dict:
    from kinora.trust.rights import screen_prompts

    screen_prompts(conn=conn, prompts=[i["prompt"] for i in items[:16]], settings=settings)  # build + warm up
    t = time.perf_counter()
    decisions = []
    for k in range(0, len(items), batch):
        decisions += screen_prompts(conn=conn, prompts=[i["prompt"] for i in items[k:k + batch]], settings=settings)
    batch_s = time.perf_counter() - t
    lat = []
    for it in items[:singles]:
        t = time.perf_counter()
        screen_prompts(conn=conn, prompts=[it["prompt"]], settings=settings)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {"decisions": decisions, "prompts_per_s": round(len(items) / batch_s, 1),
            "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2)}


def _quality(items, decisions) -> dict:
    blocks = [(i, d) for i, d in zip(items, decisions) if i["expected"] == "block"]
    allows = [(i, d) for i, d in zip(items, decisions) if i["expected"] == "allow"]
    terms = [(i, d) for i, d in zip(items, decisions) if i["expected"] == "allow_with_terms"]
    by_tech: dict[str, list[int]] = {}
    for i, d in blocks:
        by_tech.setdefault(i["technique"], [0, 0])
        by_tech[i["technique"]][0] += d.decision == "block"
        by_tech[i["technique"]][1] += 1
    return {
        "block_recall": round(sum(d.decision == "block" for _, d in blocks) / len(blocks), 4),
        "false_block_rate": round(sum(d.decision == "block" for _, d in allows) / len(allows), 4),
        "allowed_work_recognised": round(sum(d.decision == "allow_with_terms" for _, d in terms) / max(1, len(terms)), 4),
        "positives": len(blocks), "negatives": len(allows), "allowed_work_references": len(terms),
        "recall_by_technique": {t: round(a / n, 3) for t, (a, n) in sorted(by_tech.items())},
        "missed": [i["prompt"] for i, d in blocks if d.decision != "block"],
        "false_blocks": [{"prompt": i["prompt"], "reason": d.reason} for i, d in allows if d.decision == "block"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--singles", type=int, default=300, help="Prompts timed one at a time for the latency figures.")
    p.add_argument("--no-embedding", action="store_true", help="Lexical stages only (the baseline alone).")
    args = p.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from kinora.seed import seed
    from kinora.settings import RightsSettings, Settings
    from kinora.stores.bundle import Stores
    from kinora.trust.screening import cpu_has_bf16

    items = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="kinora-rights-bench-")))
    stores = Stores.open(settings)
    with stores.engine.begin() as conn:
        seed(conn=conn, settings=settings, media=stores.media)
    with stores.engine.connect() as conn:
        lexical = _measure(conn, RightsSettings(embedding=False), items, args.batch, args.singles)
        full = None if args.no_embedding else _measure(conn, RightsSettings(embedding_threads=1), items, args.batch, args.singles)
        fp32 = None if args.no_embedding else _measure(conn, RightsSettings(embedding_threads=1, embedding_precision="fp32"),
                                                       items, args.batch, args.singles)
    main_run = full or lexical
    quality = _quality(items, main_run["decisions"])
    speed = {k: v for k, v in main_run.items() if k != "decisions"}
    base = {k: v for k, v in lexical.items() if k != "decisions"}
    out = {
        "benchmark": "rights", "prompts": len(items), "works": 30, "embedding": full is not None, "cores": 1,
        "quality": quality, "quality_without_embedding": {k: v for k, v in _quality(items, lexical["decisions"]).items()
                                                          if k in ("block_recall", "false_block_rate")},
        "speed": speed, "baseline_lexical_only": base,
        "ratio_prompts_per_s": round(speed["prompts_per_s"] / base["prompts_per_s"], 3),
        "embedding_precision": None if full is None else ("bf16 batches" if cpu_has_bf16() else "fp32"),
        "baseline_fp32": None if fp32 is None else {k: v for k, v in fp32.items() if k != "decisions"},
        "ratio_vs_fp32": None if fp32 is None else round(speed["prompts_per_s"] / fp32["prompts_per_s"], 3),
        "quality_fp32": None if fp32 is None else {k: v for k, v in _quality(items, fp32["decisions"]).items()
                                                   if k in ("block_recall", "false_block_rate")},
        "goals": {"block_recall": 0.99, "false_block_rate": 0.01, "prompts_per_s": 500, "p99_ms": 20},
        "goals_met": {"block_recall": quality["block_recall"] >= 0.99, "false_block_rate": quality["false_block_rate"] <= 0.01,
                      "prompts_per_s": speed["prompts_per_s"] >= 500, "p99_ms": speed["p99_ms"] < 20},
    }
    if full is not None:
        held = [json.loads(line) for line in HOLDOUT.read_text(encoding="utf-8").splitlines() if line.strip()]
        with stores.engine.connect() as conn:
            from kinora.trust.rights import screen_prompts

            held_decisions = screen_prompts(conn=conn, prompts=[i["prompt"] for i in held],
                                            settings=RightsSettings(embedding_threads=1))
        out["holdout"] = _quality(held, held_decisions)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
