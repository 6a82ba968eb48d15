from kinora.stores import catalog, utcnow
from kinora.stores import jobs as job_store


def test_create_job_is_idempotent(seeded):
    with seeded.engine.begin() as conn:
        assert job_store.create_job(conn=conn, job_id="req_a", requester_id="usr_alice", prompt="p", params={})
        assert not job_store.create_job(conn=conn, job_id="req_a", requester_id="usr_alice", prompt="p", params={})
        assert len(job_store.list_jobs(conn=conn)) == 1


def test_a_job_gets_at_most_one_video(seeded):
    now = utcnow()
    base = dict(job_id="req_a", creator_id="usr_alice", campaign_id=None, prompt="p", duration_ms=1000, width=256,
                height=256, fps=24, model_family="ltx2", model_version="v", seed=1, media_key="m", thumbnail_key="t",
                sha256="0" * 64, provenance={}, cameo_ids=[], published_at=now, unpublished_at=None, created_at=now)
    with seeded.engine.begin() as conn:
        job_store.create_job(conn=conn, job_id="req_a", requester_id="usr_alice", prompt="p", params={})
        assert catalog.insert_video(conn=conn, values=base | {"id": "vid_1"})
        assert not catalog.insert_video(conn=conn, values=base | {"id": "vid_2"})
        assert [v.id for v in catalog.list_published(conn=conn)] == ["vid_1"]
