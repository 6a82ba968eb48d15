import pytest

from kinora.errors import InputFileError
from kinora.seed import SEED_DIR, seed
from kinora.stores import cameos as cameo_store


def test_seed_is_idempotent_and_grants_once(stores, settings):
    with stores.engine.begin() as conn:
        counts = seed(conn=conn, settings=settings, media=stores.media)
        seed(conn=conn, settings=settings, media=stores.media)
        ledger = cameo_store.list_ledger(conn=conn)
    assert (counts.users, counts.cameos, counts.works) == (7, 6, 30)
    assert sorted(e.action for e in ledger) == ["grant"] * 6


def test_seed_names_the_bad_field(stores, settings, tmp_path):
    for name in ("users.yaml", "rights.csv"):
        (tmp_path / name).write_text((SEED_DIR / name).read_text())
    (tmp_path / "cameos.yaml").write_text("cameos:\n  - {id: cam_x, handle: x1, owner: usr_alice, kind: ghost, permission: everyone, verified: true}\n")
    with stores.engine.begin() as conn, pytest.raises(InputFileError, match=r"cameos\.yaml: cameos\[0\]\.kind"):
        seed(conn=conn, settings=settings, seed_dir=tmp_path)
