"""The generator deployment's own behaviour: the environment its replicas run with, and a
generator without batching serving concurrent callers one pipeline call at a time."""

from __future__ import annotations

import asyncio
import threading

import pytest

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


class _SlowModel:
    """Stands in for the pipeline where timing is the point: each call takes ``seconds``."""

    def __init__(self, seconds: float, fail_first: bool = False) -> None:
        self.seconds, self.fail_first = seconds, fail_first
        self.calls: list[int] = []
        self.busy = self.most = 0

    def check_inputs(self, request) -> None:
        return None

    def generate(self, requests):
        import time

        self.busy += 1
        self.most = max(self.most, self.busy)
        try:
            time.sleep(self.seconds)
            self.calls.append(len(requests))
            if self.fail_first and len(self.calls) == 1:
                raise RuntimeError("pipeline failed")
            return [f"clip of {r.prompt}" for r in requests]
        finally:
            self.busy -= 1


@pytest.fixture(scope="module")
def loop():
    """One event loop for the batching tests: Serve keeps one batch queue per decorated method and
    process, bound to the loop it first ran on (in a replica, the replica's one loop)."""
    with asyncio.Runner() as runner:
        yield runner


def _batching_generator(tmp_path, model, monkeypatch):
    """The real deployment class and Serve's real batch queue, in this process: the queue only asks
    the replica context for max_ongoing_requests (to warn), which outside a replica is this stand-in."""
    from types import SimpleNamespace

    from ray import serve

    from serving.app import VideoGenerator

    context = SimpleNamespace(_deployment_config=SimpleNamespace(max_ongoing_requests=8))
    monkeypatch.setattr(serve, "get_replica_context", lambda: context)

    gen = VideoGenerator.func_or_class(Settings(home=tmp_path, generation={"max_batch_size": 4, "batch_wait_timeout_s": 0.05}))
    gen.model = model
    return gen


def _requests(n: int):
    from models.generation.types import ClipRequest

    return [ClipRequest(prompt=f"kite {i}", width=256, height=256, duration_s=1.0, seed=i) for i in range(n)]


def test_a_batch_is_closed_when_the_pipeline_is_free_not_while_the_last_one_runs(tmp_path, monkeypatch, loop):
    """Requests trickling in every 0.1 s while a 1 s batch runs wait for it and go together;
    Serve's batch queue alone closed a batch of one every 50 ms window (sizes 1, 1, 1, ...)."""
    model = _SlowModel(1.0)
    gen = _batching_generator(tmp_path, model, monkeypatch)

    async def trickle():
        async def one(i, r):
            await asyncio.sleep(0.1 * i)
            return await gen.generate(r)

        return await asyncio.wait_for(asyncio.gather(*(one(i, r) for i, r in enumerate(_requests(8)))), 30)

    clips = loop.run(trickle())
    assert clips == [f"clip of kite {i}" for i in range(8)]
    assert model.calls == [1, 4, 3] and gen.batch_sizes == [1, 4, 3]
    assert model.most == 1
    assert gen._forming == set() and gen._running is False


def test_a_request_cancelled_at_the_gate_or_in_the_queue_holds_no_place(tmp_path, monkeypatch, loop):
    model = _SlowModel(0.5)
    gen = _batching_generator(tmp_path, model, monkeypatch)
    reqs = _requests(7)

    async def scenario():
        first = asyncio.ensure_future(gen.generate(reqs[0]))
        await asyncio.sleep(0.15)  # reqs[0]'s batch runs
        waiting = [asyncio.ensure_future(gen.generate(r)) for r in reqs[1:5]]
        await asyncio.sleep(0.05)
        waiting[1].cancel()  # cancelled while it waits at the gate
        assert await first == "clip of kite 0"
        rest = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 30)
        queued = asyncio.ensure_future(gen.generate(reqs[5]))
        await asyncio.sleep(0.01)  # in the batch queue, its 50 ms window open
        queued.cancel()
        last = await asyncio.wait_for(gen.generate(reqs[6]), 30)
        return rest, last

    rest, last = loop.run(scenario())
    assert rest[0] == "clip of kite 1" and isinstance(rest[1], asyncio.CancelledError) and rest[2:] == ["clip of kite 3", "clip of kite 4"]
    assert last == "clip of kite 6"
    assert gen._forming == set() and gen._running is False


def test_a_failed_batch_fails_its_requests_and_opens_the_gate(tmp_path, monkeypatch, loop):
    model = _SlowModel(0.3, fail_first=True)
    gen = _batching_generator(tmp_path, model, monkeypatch)
    reqs = _requests(3)

    async def scenario():
        first = asyncio.ensure_future(gen.generate(reqs[0]))
        await asyncio.sleep(0.1)
        later = [asyncio.ensure_future(gen.generate(r)) for r in reqs[1:]]
        return await asyncio.wait_for(asyncio.gather(first, *later, return_exceptions=True), 30)

    results = loop.run(scenario())
    assert isinstance(results[0], RuntimeError) and str(results[0]) == "pipeline failed"
    assert results[1:] == ["clip of kite 1", "clip of kite 2"]
    assert model.calls == [1, 2]
