"""Generation on a Ray Data actor pool, for large offline campaigns (``flows.campaign_batch``).

    ray.data.from_items(specs).map_batches(ClipGenerator, compute=ActorPoolStrategy(size=N),
                                           batch_size=B, num_gpus=G)

Each actor loads the generator once (as a Serve replica does) and turns a batch of specs into
clips; the driver reads the results block by block as they are made. Actor count, batch size and
per-actor GPUs and CPUs come from ``campaign.batch_*`` (GPUs default to ``generation.num_gpus``),
so on a cluster whose GPU nodes advertise ``GPU`` the actors land there. Importing this module
is cheap: Ray, torch and the model load inside the functions and the actor.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections import defaultdict
from collections.abc import Iterator

from kinora import generation
from kinora.errors import one_line
from kinora.generation import GenerationSpec
from kinora.settings import Settings

logger = logging.getLogger(__name__)


class ClipGenerator:
    """One Ray Data actor: loads the generator once, then turns batches of specs into clips.

    A batch is a pyarrow table with ``request_id`` and ``spec`` (JSON). The result has one row per
    request: ``clip`` (the pickled :class:`~models.generation.types.Clip`; empty on failure),
    ``error`` (``Type: message``; empty on success), ``node_id``, ``device`` and ``busy_s`` (its share of
    the pipeline call). Requests are checked one by one and same-shaped ones share a pipeline call,
    as in the Serve generator, so one bad request fails alone.
    """

    def __init__(self, settings: Settings) -> None:
        import ray

        from models.generation import load_generator

        self.settings = settings
        t0 = time.perf_counter()
        self.model = load_generator(settings.generation)
        self.load_s = time.perf_counter() - t0
        self.node_id = ray.get_runtime_context().get_node_id()
        self._stores = None

    def _clip_request(self, spec: GenerationSpec):
        """The model request; a cameo's reference image or a remix's first frame is read from the stores."""
        if spec.cameos or spec.remix_media_key:
            if self._stores is None:
                from kinora.stores.bundle import Stores

                self._stores = Stores.open(self.settings)
            return generation.clip_request(spec, self._stores.media, self.settings, self._stores.engine)
        return generation.clip_request(spec)

    def __call__(self, batch):
        import pyarrow as pa

        ids = batch.column("request_id").to_pylist()
        specs = [GenerationSpec.model_validate_json(s) for s in batch.column("spec").to_pylist()]
        clips: list[bytes] = [b""] * len(specs)
        errors = [""] * len(specs)
        devices = [""] * len(specs)
        busy = [0.0] * len(specs)
        groups: dict[tuple, list[tuple[int, object]]] = defaultdict(list)
        for i, spec in enumerate(specs):
            try:
                request = self._clip_request(spec)
                self.model.check_inputs(request)
            except Exception as exc:  # noqa: BLE001 - this request fails alone
                errors[i] = one_line(exc)
                continue
            groups[(request.shape_key(), request.reference_image is not None)].append((i, request))
        for group in groups.values():
            t0 = time.perf_counter()
            try:
                made = self.model.generate([r for _, r in group])
            except Exception as exc:  # noqa: BLE001 - this group's requests fail, the others go on
                for i, _ in group:
                    errors[i] = one_line(exc)
                continue
            wall = time.perf_counter() - t0
            for (i, _), clip in zip(group, made):
                clips[i] = pickle.dumps(generation.note_call_time(clip, wall), protocol=5)
                devices[i] = clip.device
                busy[i] = wall / len(group)
        return pa.table({
            "request_id": pa.array(ids, type=pa.string()),
            "clip": pa.array(clips, type=pa.binary()),
            "error": pa.array(errors, type=pa.string()),
            "node_id": pa.array([self.node_id] * len(ids), type=pa.string()),
            "device": pa.array(devices, type=pa.string()),
            "busy_s": pa.array(busy, type=pa.float64()),
        })


def pool_options(settings: Settings) -> dict:
    """The map_batches arguments of the generator pool, from settings."""
    import ray.data

    c = settings.campaign
    opts = dict(compute=ray.data.ActorPoolStrategy(size=c.batch_actors), batch_size=c.batch_size, batch_format="pyarrow",
                num_gpus=num_gpus_per_actor(settings), fn_constructor_kwargs={"settings": settings})
    if c.batch_num_cpus is not None:
        opts["num_cpus"] = c.batch_num_cpus
    return opts


def num_gpus_per_actor(settings: Settings) -> float:
    c = settings.campaign
    return c.batch_num_gpus if c.batch_num_gpus is not None else settings.generation.num_gpus


def _quiet_ray_data() -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.execution_options.verbose_progress = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def generate_blocks(specs: list[GenerationSpec], settings: Settings) -> Iterator[list[dict]]:
    """Generate every spec on the actor pool; yield the result rows block by block as they arrive.

    Ray must be up (``serving.runtime.ensure_ray``). Rows come in no particular order.
    """
    import ray.data

    _quiet_ray_data()
    items = [{"request_id": s.request_id, "spec": s.model_dump_json()} for s in specs]
    ds = ray.data.from_items(items).map_batches(ClipGenerator, **pool_options(settings))
    for block in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1):
        yield block.to_pylist()


def load_clip(row: dict):
    """The clip of a result row (None for a failed request)."""
    return pickle.loads(row["clip"]) if row["clip"] else None
