"""LTX-2 behind Kinora's :class:`~models.generation.types.VideoGenerator` boundary.

LTX-2 (Lightricks; diffusers ``LTX2Pipeline``) generates video and synchronised stereo audio in
one joint denoising pass. This adapter turns :class:`ClipRequest` objects into :class:`Clip`
objects: it validates requests, batches those of one shape into one pipeline call, asks for the
frame count the model can make (8k+1) and trims to exactly what was requested, and fits the audio
to exactly the clip's duration.

Two presets, one code path: ``tiny`` builds the real diffusers classes from small configs with
random weights (:mod:`models.generation.ltx2_tiny`; output is noise, for tests and demos), and
``local`` loads a diffusers checkpoint folder with ``LTX2Pipeline.from_pretrained`` (no network).
Everything after the components exist is shared; :func:`save_tiny_checkpoint` writes the tiny
pipeline as a folder so tests can prove the ``local`` path reproduces it bit for bit.

References: LTX-2 (https://github.com/Lightricks/LTX-2); diffusers ``pipelines/ltx2``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers import LTX2ImageToVideoPipeline, LTX2Pipeline

from kinora.settings import GenerationSettings
from models.generation.ltx2_tiny import build_tiny_ltx2_components
from models.generation.common import checkpoint_version, note_generate_call, realign, to_uint8, torch_modules
from models.generation.types import Clip, ClipRequest, check_request

logger = logging.getLogger(__name__)

FAMILY = "ltx2"


def save_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """Write the tiny random-weight LTX-2 pipeline to ``path`` as a diffusers checkpoint folder.

    Loading it with ``preset="local"`` must reproduce ``preset="tiny"`` output bit for bit, which
    shows the local-checkpoint path is the same code that the tests exercise.
    """
    path = Path(path)
    LTX2Pipeline(**build_tiny_ltx2_components(seed=seed)).save_pretrained(path)
    return path



class LTX2Generator:
    """Generate clips with an LTX-2 pipeline on one device, in one dtype.

    Build it with :meth:`from_settings`. Not thread-safe: the pipeline's scheduler holds per-call
    state, so one generator serves one call at a time (a Serve replica serialises its batches).
    """

    family: str = FAMILY

    def __init__(self, pipe: LTX2Pipeline, settings: GenerationSettings, model_version: str) -> None:
        """Wrap ``pipe`` (already built or loaded); move it to ``settings.device`` and ``settings.dtype``."""
        self.settings = settings
        self.model_version = model_version
        self.device = torch.device(settings.device)
        self.dtype: torch.dtype = getattr(torch, settings.dtype)

        pipe.to(self.device)
        # ``from_pretrained(dtype=...)`` already loaded the weights in ``dtype``; cast only what is not,
        # since diffusers warns on every cast and a no-op cast is pure noise in the logs.
        if any(m.dtype != self.dtype for m in torch_modules(pipe)):
            pipe.to(dtype=self.dtype)
        for module in torch_modules(pipe):  # loaded weights compute exactly as built ones (see realign)
            realign(module)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        # Cameo conditioning: the image-to-video pipeline over the very same module objects (no weight copy).
        self.i2v_pipe = LTX2ImageToVideoPipeline(**pipe.components)
        self.i2v_pipe.set_progress_bar_config(disable=True)

        self.sample_rate = int(pipe.vocoder.config.output_sampling_rate)
        self.spatial_multiple = int(pipe.vae_spatial_compression_ratio)  # 32 for LTX-2
        self.temporal_multiple = int(pipe.vae_temporal_compression_ratio)  # 8 for LTX-2: frames must be 8k+1

    @classmethod
    def from_settings(cls, settings: GenerationSettings, *, tiny_seed: int = 0) -> "LTX2Generator":
        """Build the generator ``settings`` describe.

        Sets torch's intra-op thread count for the process (``settings.torch_threads``): one
        generator per process (a Serve replica) is the intended deployment.

        Args:
            tiny_seed: seed of the random weights for ``preset="tiny"``; ignored for ``local``.
        """
        if settings.family != FAMILY:
            raise ValueError(f"settings.family is {settings.family!r}; LTX2Generator serves {FAMILY!r}")
        torch.set_num_threads(settings.torch_threads)

        if settings.preset == "tiny":
            pipe = LTX2Pipeline(**build_tiny_ltx2_components(seed=tiny_seed))
            model_version = f"ltx2-tiny-random-s{tiny_seed}"
        elif settings.preset == "local":
            checkpoint_dir = Path(settings.checkpoint_dir)
            model_version = checkpoint_version(checkpoint_dir)
            pipe = LTX2Pipeline.from_pretrained(
                checkpoint_dir, dtype=getattr(torch, settings.dtype), local_files_only=True
            )
        else:  # settings validation makes this unreachable; kept so a new preset fails loudly
            raise ValueError(f"settings.preset {settings.preset!r} is not one of 'tiny', 'local'")

        logger.info(
            "loaded %s (preset %s) on %s in %s with %d torch threads",
            model_version,
            settings.preset,
            settings.device,
            settings.dtype,
            settings.torch_threads,
        )
        return cls(pipe, settings, model_version=model_version)

    # -- 1. check inputs ---------------------------------------------------------------------------
    def check_inputs(self, request: ClipRequest) -> None:
        """Raise ``ValueError`` naming the field if ``request`` cannot be honoured as asked."""
        check_request(request, self.settings, spatial_multiple=self.spatial_multiple)

    # -- 2. generate -------------------------------------------------------------------------------
    def generate(self, requests: list[ClipRequest], generator: list[torch.Generator] | None = None) -> list[Clip]:
        """Generate one clip per request, in order; all requests must share ``shape_key()``.

        Text-only requests with the same step count run as one batched pipeline call; requests with a
        ``reference_image`` run one at a time through the image-to-video pipeline. Without
        ``generator``, each request gets a CPU ``torch.Generator`` seeded with its ``seed``, so a
        clip's noise depends on its own request only (and is the same on any device). Batching can
        still change rounding: on CPU a batched clip differed from the same request run alone by at
        most one grey level in ~0.003% of pixels.
        """
        if not requests:
            return []
        call_start = time.perf_counter()
        for request in requests:
            self.check_inputs(request)
        keys = {r.shape_key() for r in requests}
        if len(keys) > 1:
            raise ValueError(f"requests have different shape_key() values {sorted(keys)}; batch by shape first")
        if generator is not None and len(generator) != len(requests):
            raise ValueError(f"generator has {len(generator)} entries for {len(requests)} requests")
        generators = generator or [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests]

        num_frames = requests[0].num_frames
        pipe_frames = self.pipeline_num_frames(num_frames)
        if pipe_frames != num_frames:
            logger.warning(
                "LTX-2 makes 8k+1 frames: generating %d frames and trimming to the %d requested",
                pipe_frames,
                num_frames,
            )

        clips: dict[int, Clip] = {}
        text_only: dict[int, list[int]] = {}  # steps -> request indices
        for i, request in enumerate(requests):
            if request.reference_image is None:
                steps = request.num_inference_steps or self.settings.num_inference_steps
                text_only.setdefault(steps, []).append(i)
            else:
                clips[i] = self._run([request], [generators[i]], pipe_frames, image=request.reference_image)[0]
        for indices in text_only.values():
            batch = self._run([requests[i] for i in indices], [generators[i] for i in indices], pipe_frames)
            clips.update(zip(indices, batch))
        return note_generate_call([clips[i] for i in range(len(requests))], call_start)

    def pipeline_num_frames(self, num_frames: int) -> int:
        """Return the smallest frame count the model can make (8k+1) that is >= ``num_frames``."""
        m = self.temporal_multiple
        return math.ceil((num_frames - 1) / m) * m + 1

    def _run(
        self,
        requests: list[ClipRequest],
        generators: list[torch.Generator],
        pipe_frames: int,
        image: np.ndarray | None = None,
    ) -> list[Clip]:
        """Run one pipeline call for ``requests`` (same shape and steps) and cut the outputs to size."""
        first = requests[0]
        steps = first.num_inference_steps or self.settings.num_inference_steps
        guidance = self.settings.guidance_scale
        kwargs = dict(
            prompt=[r.prompt for r in requests],
            negative_prompt=[r.negative_prompt for r in requests],
            height=first.height,
            width=first.width,
            num_frames=pipe_frames,
            frame_rate=float(first.fps),
            num_inference_steps=steps,
            # One guidance scale for both modalities: the pipeline's audio default (7.0) would
            # otherwise switch classifier-free guidance on even when settings turn it off.
            guidance_scale=guidance,
            audio_guidance_scale=guidance,
            # STG and modality-isolation guidance each cost a full extra transformer pass per step;
            # settings expose neither, so both stay off.
            stg_scale=0.0,
            audio_stg_scale=0.0,
            modality_scale=1.0,
            audio_modality_scale=1.0,
            spatio_temporal_guidance_blocks=None,
            generator=generators,
            output_type="np",
            return_dict=False,
        )
        start = time.perf_counter()
        if image is None:
            video, audio = self.pipe(**kwargs)
        else:
            # A PIL image lets the pipeline re-compress it (H.264 CRF) as LTX-2 was trained to expect.
            video, audio = self.i2v_pipe(image=PIL.Image.fromarray(image), **kwargs)
        pipeline_s = time.perf_counter() - start

        # video: float [B, F_pipe, H, W, 3] in [0, 1]; audio: tensor [B, C, S_pipe] at self.sample_rate
        clips = []
        for b, request in enumerate(requests):
            start = time.perf_counter()
            frames = to_uint8(video[b, : request.num_frames])
            waveform = self._fit_audio(audio[b], request)
            clips.append(
                Clip(
                    frames=frames,
                    audio=waveform,
                    fps=request.fps,
                    sample_rate=self.sample_rate,
                    seed=request.seed,
                    model_family=self.family,
                    model_version=self.model_version,
                    timings={"pipeline": pipeline_s, "postprocess": time.perf_counter() - start},
                    device=str(self.device),
                )
            )
        return clips

    def _fit_audio(self, waveform: torch.Tensor, request: ClipRequest) -> np.ndarray:
        """Pad (with silence) or trim ``waveform`` [C, S] to exactly the clip's duration.

        The audio VAE's causal decoder returns a few mel frames fewer than the latent length implies
        (about 32 ms), and the pipeline sized audio for the 8k+1 frames it made, not the frames kept.
        """
        target = round(request.num_frames / request.fps * self.sample_rate)
        samples = waveform.detach().to(device="cpu", dtype=torch.float32).numpy()
        if samples.shape[1] >= target:
            return np.ascontiguousarray(samples[:, :target])
        logger.debug("padding audio from %d to %d samples with silence", samples.shape[1], target)
        return np.pad(samples, ((0, 0), (0, target - samples.shape[1])))
