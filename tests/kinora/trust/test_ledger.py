"""The consent ledger: hash-chained, signed, and every kind of tampering is named by verify()."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from kinora.stores import cameos as cameo_store
from kinora.stores.schema import consent_ledger, ledger_head
from kinora.trust import ledger
from kinora.trust.ledger import LedgerKey


@pytest.fixture
def chained(seeded, settings):
    """The seeded store plus a few more entries: 6 grants (seed) + 3 changes."""
    key = LedgerKey.for_settings(settings)
    with seeded.engine.begin() as conn:
        for i in range(3):
            ledger.append(conn=conn, key=key, cameo_id="cam_alice", actor_id="usr_alice", action="change",
                          detail={"restrictions": [f"rule {i}"]})
    return seeded, key


def _verify(stores, key):
    with stores.engine.connect() as conn:
        return ledger.verify(conn=conn, public_keys=[key.public])


def test_an_untouched_ledger_verifies(chained):
    stores, key = chained
    report = _verify(stores, key)
    assert report.ok, report.problems
    assert report.entries == 9
    with stores.engine.connect() as conn:
        rows = cameo_store.list_ledger(conn=conn)
    assert rows[0].prev_hash == ledger.GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in zip(rows, rows[1:]))


def test_an_edited_entry_is_detected(chained):
    stores, key = chained
    with stores.engine.begin() as conn:
        conn.execute(consent_ledger.update().where(consent_ledger.c.seq == 3).values(detail={"permission": "everyone"}))
    report = _verify(stores, key)
    assert not report.ok
    assert any("entry seq 3" in p and "edited" in p for p in report.problems), report.problems


def test_an_edit_with_a_recomputed_hash_fails_the_signature(chained):
    stores, key = chained
    with stores.engine.begin() as conn:
        row = cameo_store.get_ledger_entry(conn=conn, seq=4)
        forged = ledger.entry_hash(seq=row.seq, ts=row.ts, cameo_id=row.cameo_id, actor_id=row.actor_id,
                                   action=row.action, detail={"forged": True}, prev_hash=row.prev_hash)
        conn.execute(consent_ledger.update().where(consent_ledger.c.seq == 4).values(detail={"forged": True}, entry_hash=forged))
    problems = _verify(stores, key).problems
    assert any("entry seq 4" in p and "signature does not verify" in p for p in problems), problems
    assert any("entry seq 5" in p and "does not follow" in p for p in problems), problems


def test_a_removed_entry_is_detected(chained):
    stores, key = chained
    with stores.engine.begin() as conn:
        conn.execute(consent_ledger.delete().where(consent_ledger.c.seq == 2))
    problems = _verify(stores, key).problems
    assert any("entry seq 3" in p and "does not follow entry seq 1" in p for p in problems), problems
    assert any(p.startswith("head:") for p in problems)


def test_reordered_entries_are_detected(chained):
    stores, key = chained
    with stores.engine.begin() as conn:  # swap the contents of entries 6 and 7 (seq is the order)
        a, b = (cameo_store.get_ledger_entry(conn=conn, seq=s) for s in (6, 7))
        cols = ("ts", "cameo_id", "actor_id", "action", "detail", "prev_hash", "entry_hash", "signature", "key_id")
        conn.execute(consent_ledger.update().where(consent_ledger.c.seq == 6).values(**{c: getattr(b, c) for c in cols}))
        conn.execute(consent_ledger.update().where(consent_ledger.c.seq == 7).values(**{c: getattr(a, c) for c in cols}))
    problems = _verify(stores, key).problems
    assert any("entry seq 6" in p and "does not follow" in p for p in problems), problems


def test_entries_cut_from_the_end_are_detected_by_the_signed_head(chained):
    stores, key = chained
    with stores.engine.begin() as conn:
        conn.execute(consent_ledger.delete().where(consent_ledger.c.seq == 9))
    problems = _verify(stores, key).problems
    assert problems == ["head: records 9 entries ending at seq 9; the ledger has 8 ending at seq 8 "
                        "(entries removed from or added after the end)"]


def test_a_forged_head_fails_its_signature(chained):
    stores, key = chained
    with stores.engine.begin() as conn:
        conn.execute(consent_ledger.delete().where(consent_ledger.c.seq == 9))
        prev = cameo_store.get_ledger_entry(conn=conn, seq=8)
        conn.execute(ledger_head.update().values(seq=8, count=8, entry_hash=prev.entry_hash))
    assert _verify(stores, key).problems == ["head: signature does not verify"]


def test_another_key_cannot_verify(chained):
    stores, _ = chained
    other = LedgerKey.load(stores.media.root.parent / "other.pem")
    report = _verify(stores, other)
    assert not report.ok and all("unknown key" in p or "head" in p for p in report.problems)


def test_concurrent_appends_keep_one_chain(chained):
    """Writers in parallel threads queue on the head lock instead of forking the chain."""
    stores, key = chained

    def writer(n):
        for i in range(10):
            with stores.engine.begin() as conn:
                ledger.append(conn=conn, key=key, cameo_id="cam_rex", actor_id="usr_erin", action="change",
                              detail={"writer": n, "i": i})
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = _verify(stores, key)
    assert report.ok, report.problems
    assert report.entries == 9 + 40


def test_entries_from_before_the_chain_are_sealed_by_the_next_append(chained):
    stores, key = chained
    with stores.engine.begin() as conn:  # what a revision-0002 database holds: rows without hashes
        conn.execute(consent_ledger.insert().values(ts=sa.func.now(), cameo_id="cam_bob", actor_id="usr_bob",
                                                    action="change", detail={"legacy": True}))
    assert any("not sealed" in p for p in _verify(stores, key).problems)
    with stores.engine.begin() as conn:
        ledger.append(conn=conn, key=key, cameo_id="cam_bob", actor_id="usr_bob", action="change", detail={"x": 1})
    report = _verify(stores, key)
    assert report.ok, report.problems
    assert report.entries == 11


def test_cli_verify_ledger_exit_codes(chained, settings):
    stores, _ = chained
    env_cmd = [sys.executable, "-m", "kinora.cli", "consent", "verify-ledger"]
    import os

    env = {**os.environ, "KINORA_HOME": str(settings.home)}
    ok = subprocess.run(env_cmd, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "ledger ok: 9 entries" in ok.stdout
    with stores.engine.begin() as conn:
        conn.execute(consent_ledger.update().where(consent_ledger.c.seq == 2).values(actor_id="usr_mallory"))
    bad = subprocess.run(env_cmd, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "entry seq 2" in bad.stderr and "edited" in bad.stderr
    assert "Traceback" not in bad.stderr
