"""Wan video plus AudioLDM2 sound behind Kinora's :class:`~models.generation.types.VideoGenerator` boundary.

Wan (Alibaba; diffusers ``WanPipeline``) generates silent video. This adapter pairs it with a
text-to-audio model, AudioLDM2 (diffusers ``AudioLDM2Pipeline``), run on the same prompt and seed
for the clip's duration, and mixes that sound into the clip with :func:`fit_audio`: resampled to
48 kHz stereo (the rate Kinora's AAC encoder writes, so no second resampling happens later),
normalised to ``settings.audio_loudness_lufs`` (ITU-R BS.1770) and cut to exactly the clip's length.
The two models do not see each other, so sound matches the prompt, not the pictures' timing.

Like the LTX-2 adapter it validates requests, batches requests of one shape into one pipeline
call, asks for the frame count the model can make (Wan: 4k+1) and trims to exactly what was asked.

Cameos (``request.reference_image``) run through ``WanImageToVideoPipeline`` over the very same
modules, which works only for checkpoints that do text- and image-to-video with one set of weights:
Wan 2.2 TI2V (``expand_timesteps=True``; the image becomes the clip's first frame). The tiny preset
has that geometry. Other Wan checkpoints (Wan 2.1 T2V, Wan 2.2 T2V-A14B) reject cameo requests in
:meth:`WanGenerator.check_inputs`.

Two presets, one code path: ``tiny`` builds the real diffusers classes from small configs with
random weights (:mod:`models.generation.wan_tiny`; output is noise), and ``local`` loads two
diffusers checkpoint folders with ``from_pretrained`` (no network). :func:`save_tiny_checkpoint`
writes the tiny pipelines as folders so tests can prove the ``local`` path reproduces them bit for bit.

References: Wan (https://github.com/Wan-Video/Wan2.2); AudioLDM 2 (https://arxiv.org/abs/2308.05734);
diffusers ``pipelines/wan`` and ``pipelines/audioldm2``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers import AudioLDM2Pipeline, WanImageToVideoPipeline, WanPipeline

from kinora.settings import GenerationSettings
from models.generation.audio_mix import fit_audio
from models.generation.common import checkpoint_version, note_generate_call, realign, to_uint8, torch_modules
from models.generation.types import Clip, ClipRequest, check_request
from models.generation.wan_tiny import build_tiny_audio_components, build_tiny_wan_components

logger = logging.getLogger(__name__)

FAMILY = "wan"
SAMPLE_RATE = 48_000  # Clip.sample_rate: AAC's 48 kHz, so encoding needs no second resampling
MAX_SEQUENCE_LENGTH = 512  # UMT5 prompt tokens, WanPipeline's default and Wan's training length


def save_tiny_checkpoint(video_dir: Path, audio_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the tiny random-weight Wan and AudioLDM2 pipelines as two diffusers checkpoint folders.

    Loading them with ``preset="local"`` (``checkpoint_dir=video_dir``, ``audio_checkpoint_dir=audio_dir``)
    must reproduce ``preset="tiny"`` output bit for bit, which shows the local-checkpoint path is the
    same code that the tests exercise.
    """
    video_dir, audio_dir = Path(video_dir), Path(audio_dir)
    WanPipeline(**build_tiny_wan_components(seed=seed)).save_pretrained(video_dir)
    AudioLDM2Pipeline(**build_tiny_audio_components(seed=seed)).save_pretrained(audio_dir)
    return video_dir, audio_dir



class WanGenerator:
    """Generate clips with a Wan pipeline and an AudioLDM2 pipeline on one device, in one dtype.

    Build it with :meth:`from_settings`. Not thread-safe: the schedulers hold per-call state, so one
    generator serves one call at a time (a Serve replica serialises its batches).
    """

    family: str = FAMILY

    def __init__(
        self, pipe: WanPipeline, audio_pipe: AudioLDM2Pipeline, settings: GenerationSettings, model_version: str
    ) -> None:
        """Wrap both pipelines (already built or loaded); move them to ``settings.device`` and ``settings.dtype``."""
        self.settings = settings
        self.model_version = model_version
        self.device = torch.device(settings.device)
        self.dtype: torch.dtype = getattr(torch, settings.dtype)

        for p in (pipe, audio_pipe):
            p.to(self.device)
            # ``from_pretrained(dtype=...)`` already loaded the weights in ``dtype``; cast only what is not,
            # since diffusers warns on every cast and a no-op cast is pure noise in the logs.
            if any(m.dtype != self.dtype for m in torch_modules(p)):
                p.to(dtype=self.dtype)
            for module in torch_modules(p):
                realign(module)
            p.set_progress_bar_config(disable=True)
        self.pipe = pipe
        self.audio_pipe = audio_pipe

        # Cameo conditioning: the image-to-video pipeline over the very same module objects (no weight
        # copy). Only TI2V-style checkpoints (per-token timesteps) denoise an image-conditioned first
        # latent frame with their text-to-video weights; the others need a different transformer.
        self.i2v_pipe: WanImageToVideoPipeline | None = None
        if pipe.config.expand_timesteps and pipe.transformer is not None:
            self.i2v_pipe = WanImageToVideoPipeline(
                **pipe.components,
                boundary_ratio=pipe.config.boundary_ratio,
                expand_timesteps=True,
            )
            self.i2v_pipe.set_progress_bar_config(disable=True)

        transformer = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
        patch = transformer.config.patch_size  # (t, h, w)
        # WanPipeline itself requires multiples of 16 and rounds down to VAE factor x patch size.
        vae_spatial = int(pipe.vae_scale_factor_spatial)
        self.spatial_multiple = math.lcm(16, vae_spatial * patch[1], vae_spatial * patch[2])  # 32 for TI2V, 16 for 2.1
        self.temporal_multiple = int(pipe.vae_scale_factor_temporal)  # 4 for Wan: frames must be 4k+1

        vocoder = audio_pipe.vocoder.config
        self.audio_native_rate = int(vocoder.sampling_rate)  # 16 kHz for AudioLDM2
        # AudioLDM2 refuses audio shorter than one VAE-compressed block of mel frames (80 ms for the real model).
        self.min_audio_s = math.prod(vocoder.upsample_rates) / vocoder.sampling_rate * audio_pipe.vae_scale_factor

    @classmethod
    def from_settings(cls, settings: GenerationSettings, *, tiny_seed: int = 0) -> "WanGenerator":
        """Build the generator ``settings`` describe.

        Sets torch's intra-op thread count for the process (``settings.torch_threads``): one
        generator per process (a Serve replica) is the intended deployment.

        Args:
            tiny_seed: seed of the random weights for ``preset="tiny"``; ignored for ``local``.
        """
        if settings.family != FAMILY:
            raise ValueError(f"settings.family is {settings.family!r}; WanGenerator serves {FAMILY!r}")
        torch.set_num_threads(settings.torch_threads)

        if settings.preset == "tiny":
            pipe = WanPipeline(**build_tiny_wan_components(seed=tiny_seed))
            audio_pipe = AudioLDM2Pipeline(**build_tiny_audio_components(seed=tiny_seed))
            model_version = f"wan-tiny-random-s{tiny_seed}"
        elif settings.preset == "local":
            if settings.checkpoint_dir is None or settings.audio_checkpoint_dir is None:
                raise ValueError("preset 'local' needs checkpoint_dir and audio_checkpoint_dir")
            video_dir, audio_dir = Path(settings.checkpoint_dir), Path(settings.audio_checkpoint_dir)
            model_version = f"{checkpoint_version(video_dir)}+{checkpoint_version(audio_dir)}"
            dtype = getattr(torch, settings.dtype)
            pipe = WanPipeline.from_pretrained(video_dir, dtype=dtype, local_files_only=True)
            audio_pipe = AudioLDM2Pipeline.from_pretrained(audio_dir, dtype=dtype, local_files_only=True)
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
        return cls(pipe, audio_pipe, settings, model_version=model_version)

    # -- 1. check inputs ---------------------------------------------------------------------------
    def check_inputs(self, request: ClipRequest) -> None:
        """Raise ``ValueError`` naming the field if ``request`` cannot be honoured as asked."""
        if request.reference_image is not None and self.i2v_pipe is None:
            raise ValueError(
                "reference_image: the 'wan' family in this build does not take cameo reference images with "
                f"checkpoint {self.model_version} (only Wan 2.2 TI2V-style checkpoints, expand_timesteps=True, "
                "run image-to-video on their text-to-video weights)"
            )
        check_request(request, self.settings, spatial_multiple=self.spatial_multiple)

    # -- 2. generate -------------------------------------------------------------------------------
    def generate(self, requests: list[ClipRequest], generator: list[torch.Generator] | None = None) -> list[Clip]:
        """Generate one clip per request, in order; all requests must share ``shape_key()``.

        Text-only requests with the same step count run as one batched video call; requests with a
        ``reference_image`` run one at a time through the image-to-video pipeline. Sound for all
        requests with the same step count runs as one batched AudioLDM2 call (it never sees the image).

        Without ``generator``, each request gets a CPU ``torch.Generator`` seeded with its ``seed``, so
        a clip's noise depends on its own request only (and is the same on any device). The video
        consumes that generator; the audio gets a fresh CPU generator seeded with the same seed
        (``generator.initial_seed()``), so sound does not depend on how much noise the video drew.
        Batching can still change rounding (batched matmuls on CPU), so a batched clip may differ from
        the same request run alone in the last bits.
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
        audio_generators = [torch.Generator(device="cpu").manual_seed(g.initial_seed()) for g in generators]

        num_frames = requests[0].num_frames
        pipe_frames = self.pipeline_num_frames(num_frames)
        if pipe_frames != num_frames:
            logger.warning(
                "Wan makes 4k+1 frames: generating %d frames and trimming to the %d requested",
                pipe_frames,
                num_frames,
            )

        by_steps: dict[int, list[int]] = {}  # steps -> request indices
        for i, request in enumerate(requests):
            by_steps.setdefault(request.num_inference_steps or self.settings.num_inference_steps, []).append(i)

        # video: float [F_pipe, H, W, 3] in [0, 1] per request, and the seconds of the call that made it
        videos: dict[int, tuple[np.ndarray, float]] = {}
        for indices in by_steps.values():
            text_only = [i for i in indices if requests[i].reference_image is None]
            if text_only:
                batch, seconds = self._run_video(
                    [requests[i] for i in text_only], [generators[i] for i in text_only], pipe_frames
                )
                videos.update((i, (v, seconds)) for i, v in zip(text_only, batch))
            for i in indices:
                if requests[i].reference_image is not None:
                    batch, seconds = self._run_video(
                        [requests[i]], [generators[i]], pipe_frames, image=requests[i].reference_image
                    )
                    videos[i] = (batch[0], seconds)

        # audio: float [1, S_native] per request, at self.audio_native_rate
        sounds: dict[int, tuple[np.ndarray, float]] = {}
        for indices in by_steps.values():
            batch, seconds = self._run_audio([requests[i] for i in indices], [audio_generators[i] for i in indices])
            sounds.update((i, (a, seconds)) for i, a in zip(indices, batch))

        clips = []
        for i, request in enumerate(requests):
            (video, video_s), (sound, audio_s) = videos[i], sounds[i]
            frames = to_uint8(video[: request.num_frames])
            start = time.perf_counter()
            audio = fit_audio(
                sound,
                sample_rate=self.audio_native_rate,
                target_rate=SAMPLE_RATE,
                num_samples=round(request.num_frames / request.fps * SAMPLE_RATE),
                loudness_lufs=self.settings.audio_loudness_lufs,
            )
            mix_s = time.perf_counter() - start
            clips.append(
                Clip(
                    frames=frames,
                    audio=audio,
                    fps=request.fps,
                    sample_rate=SAMPLE_RATE,
                    seed=request.seed,
                    model_family=self.family,
                    model_version=self.model_version,
                    timings={"video": video_s, "audio": audio_s, "mix": mix_s, "pipeline": video_s + audio_s + mix_s},
                )
            )
        return note_generate_call(clips, call_start)

    def pipeline_num_frames(self, num_frames: int) -> int:
        """Return the smallest frame count the model can make (4k+1) that is >= ``num_frames``."""
        m = self.temporal_multiple
        return math.ceil((num_frames - 1) / m) * m + 1

    def _run_video(
        self,
        requests: list[ClipRequest],
        generators: list[torch.Generator],
        pipe_frames: int,
        image: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float]:
        """Run one Wan call for ``requests`` (same shape and steps); return video [B, F_pipe, H, W, 3] and seconds.

        The video is float RGB in [0, 1] with the pipeline's 4k+1 frames, not yet trimmed.
        """
        first = requests[0]
        kwargs = dict(
            height=first.height,
            width=first.width,
            num_frames=pipe_frames,
            num_inference_steps=first.num_inference_steps or self.settings.num_inference_steps,
            guidance_scale=self.settings.guidance_scale,
            generator=generators,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
            output_type="np",
            return_dict=False,
        )
        prompts = [r.prompt for r in requests]
        negative_prompts = [r.negative_prompt for r in requests]
        start = time.perf_counter()
        if image is None:
            (video,) = self.pipe(prompt=prompts, negative_prompt=negative_prompts, **kwargs)
        else:
            # Encode with the text-to-video pipeline: diffusers 0.42's image-to-video prompt cleaning calls
            # ftfy without checking that it is installed. Same tokenizer and encoder, so same embeddings.
            prompt_embeds, negative_prompt_embeds = self.pipe.encode_prompt(
                prompt=prompts,
                negative_prompt=negative_prompts,
                do_classifier_free_guidance=self.settings.guidance_scale > 1.0,
                max_sequence_length=MAX_SEQUENCE_LENGTH,
                device=self.device,
            )
            (video,) = self.i2v_pipe(
                image=PIL.Image.fromarray(image),  # the pipeline resizes it to the clip's size
                prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_prompt_embeds,
                **kwargs,
            )
        return video, time.perf_counter() - start

    def _run_audio(
        self, requests: list[ClipRequest], generators: list[torch.Generator]
    ) -> tuple[list[np.ndarray], float]:
        """Run one AudioLDM2 call for ``requests``; return a mono waveform [1, S] per request, and seconds."""
        first = requests[0]
        seconds = max(first.num_frames / first.fps, self.min_audio_s)
        start = time.perf_counter()
        (audio,) = self.audio_pipe(
            prompt=[r.prompt for r in requests],
            negative_prompt=[r.negative_prompt for r in requests],
            # Two samples longer than the clip: the pipeline truncates seconds x rate to an integer, and
            # fit_audio then trims the surplus instead of padding the last sample with silence.
            audio_length_in_s=seconds + 2 / self.audio_native_rate,
            num_inference_steps=first.num_inference_steps or self.settings.num_inference_steps,
            # One guidance scale for both models; AudioLDM2's default (3.5) would switch
            # classifier-free guidance on (a second UNet pass) even when settings turn it off.
            guidance_scale=self.settings.guidance_scale,
            num_waveforms_per_prompt=1,  # more would rank waveforms with CLAP (needs librosa)
            generator=generators,
            output_type="np",
            return_dict=False,
        )
        # audio: float32 [B, S] mono at self.audio_native_rate
        return [audio[b][None, :] for b in range(len(requests))], time.perf_counter() - start
