from datetime import UTC, datetime

import duckdb
import pytest

from kinora.stores.lake import Lake, LakeError


def _decision(ts, rid="req_1"):
    return dict(request_id=rid, campaign_id="c", stage="consent", outcome="allow", reason="ok", ts=ts)


def test_one_file_per_append_partitioned_by_date(tmp_path):
    lake = Lake(tmp_path, writer="w1")
    d1, d2 = datetime(2026, 11, 24, 23, 0, tzinfo=UTC), datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    lake.append("decisions", [_decision(d1, "a"), _decision(d2, "b")])
    lake.append("decisions", [_decision(d2, "c")])
    files = lake.listing("decisions")
    assert [f.day for f in files].count("2026-11-25") == 2
    assert [f.day for f in files].count("2026-11-24") == 1
    assert all(f.name.startswith("w1-") and f.url.endswith(f"/date={f.day}/{f.name}") for f in files)
    rows = duckdb.sql(f"SELECT request_id, date FROM read_parquet('{lake.glob('decisions')}', hive_partitioning=true) ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["a", "b", "c"]
    assert lake.read("decisions").num_rows == 3


def test_contract_violations_are_refused_and_nothing_written(tmp_path):
    lake = Lake(tmp_path)
    now = datetime.now(UTC)
    with pytest.raises(LakeError, match="unknown fields"):
        lake.append("decisions", [_decision(now) | {"oops": 1}])
    with pytest.raises(LakeError):
        lake.append("decisions", [_decision(now) | {"request_id": None}])
    with pytest.raises(LakeError, match="unknown lake table"):
        lake.append("nope", [_decision(now)])
    assert lake.files("decisions") == []
