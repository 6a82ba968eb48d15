import pytest

from kinora.stores import cameos as cameo_store
from kinora.trust.consent import check_consent


@pytest.mark.parametrize(
    "requester, cameos, allowed, reason_part",
    [
        ("usr_studio", [], True, "no cameos"),
        ("usr_studio", ["alice"], True, "permits"),  # everyone
        ("usr_studio", ["bob"], True, "permits"),  # approved list includes studio
        ("usr_carol", ["bob"], False, "approved"),  # not on bob's list
        ("usr_studio", ["carol"], False, "only_me"),
        ("usr_carol", ["carol"], True, "permits"),  # the owner
        ("usr_studio", ["dave"], True, "permits"),  # mutuals: studio <-> dave
        ("usr_alice", ["dave"], False, "mutual"),
        ("usr_studio", ["zed"], False, "unknown cameo @zed"),
        ("usr_studio", ["alice", "bob", "rex"], False, "at most 2"),
    ],
)
def test_permission_levels(seeded, requester, cameos, allowed, reason_part):
    with seeded.engine.connect() as conn:
        decision = check_consent(conn=conn, requester_id=requester, cameo_handles=cameos, max_cameos=2)
    assert decision.allowed is allowed
    assert reason_part in decision.reason
    if allowed:
        assert [g.cameo_handle for g in decision.grants] == cameos
        assert all(g.ledger_seq > 0 for g in decision.grants)


def test_revocation_blocks_and_changes_the_grant_digest(seeded):
    with seeded.engine.begin() as conn:
        before = check_consent(conn=conn, requester_id="usr_studio", cameo_handles=["alice"], max_cameos=2)
        cameo = cameo_store.get_cameo_by_handle(conn=conn, handle="alice")
        cameo_store.revoke_cameo(conn=conn, cameo_id=cameo.id)
        after = check_consent(conn=conn, requester_id="usr_studio", cameo_handles=["alice"], max_cameos=2)
    assert before.allowed and not after.allowed
    assert "revoked" in after.reason
    assert len(before.digest()) == 64
