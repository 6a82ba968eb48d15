"""The generator deployment's own behaviour: the environment its replicas run with, and a
generator without batching serving concurrent callers one pipeline call at a time."""

from __future__ import annotations

import asyncio
import threading

from kinora.settings import Settings


def test_a_replica_runs_with_the_serve_environment_in_settings(serve_app):
    from serving.runtime import generator_handle

    stats = generator_handle(serve_app).stats.remote().result(timeout_s=60)
    assert serve_app.serve.replica_env  # the default is not empty
    assert stats["serve_env"] == serve_app.serve.replica_env  # read inside the replica's process


def test_an_empty_replica_env_leaves_the_replicas_to_rays_defaults(tmp_path):
    from serving.app import build_app

    def options(app):
        return app._bound_deployment.ray_actor_options

    default = build_app(Settings(home=tmp_path))
    plain = build_app(Settings(home=tmp_path, serve={"replica_env": {}}))
    generator = default._bound_deployment.init_args[0]
    assert options(default)["runtime_env"]["env_vars"]["RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD"] == "0"
    assert options(generator)["runtime_env"] == options(default)["runtime_env"]
    assert "runtime_env" not in options(plain)
    assert "runtime_env" not in options(plain._bound_deployment.init_args[0])


def test_without_batching_concurrent_requests_get_one_pipeline_call_each_never_overlapping(tmp_path):
    """max_batch_size=1 skips Serve's batch queue; the pipeline (its scheduler keeps per-call
    state) must still see one call at a time, as it does behind @serve.batch."""
    from models.generation.types import ClipRequest
    from serving.app import VideoGenerator

    gen = VideoGenerator.func_or_class(Settings(home=tmp_path, generation={"max_batch_size": 1}))
    inner, busy, most = gen.model.generate, [0], [0]
    lock = threading.Lock()

    def counting(requests):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            return inner(requests)
        finally:
            with lock:
                busy[0] -= 1

    gen.model.generate = counting
    requests = [ClipRequest(prompt=f"a red kite {i}", width=256, height=256, duration_s=1.0, seed=i) for i in range(3)]

    async def all_at_once():
        return await asyncio.gather(*(gen.generate(r) for r in requests))

    clips = asyncio.run(all_at_once())
    assert [c.frames.shape[0] for c in clips] == [r.num_frames for r in requests]
    assert [c.seed for c in clips] == [0, 1, 2]
    assert most[0] == 1 and gen.batch_sizes == [1, 1, 1]
