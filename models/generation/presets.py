"""Realistic-size model presets with random weights, for GPU throughput and memory benchmarks.

The ``tiny`` preset (``ltx2_tiny``, ``wan_tiny``) shrinks every width and depth so tests run on a
CPU. A GPU benchmark needs the opposite: the real layer sizes, so that FLOPs, activation memory and
kernel shapes are those of the real model, without a checkpoint download. These presets build the
same diffusers classes with the real configs and random weights, directly on the target device
and in the target dtype (19B parameters in float32 on a CPU first would not fit anywhere).

**Not a model**: output is noise. The figures (frames per second, peak GPU memory) are those of
the real architecture at the given resolution, steps and guidance, not of a trained checkpoint.

Left out, on purpose, and said in every result: the text encoders (Gemma-3-12B for LTX-2, UMT5-XXL
for Wan). They run once per prompt, not once per denoising step, and the GPU benchmark feeds
``prompt_embeds`` of the real shape instead (random). The Wan family's separate text-to-audio
model is also left out; its presets measure the video model alone.

Sizes (parameters, counted on the meta device; see ``/work/shared/notes/ltx2-offline.md``):

- ``ltx2-19b``: diffusers' default ``LTX2VideoTransformer3DModel`` config, the LTX-2.0 release:
  18.9B transformer, 1.4B text connectors, 1.2B video VAE, 53M audio VAE, 56M vocoder.
- ``wan2.1-1.3b``: Wan 2.1 T2V 1.3B (dim 1536, 30 layers, 12 heads, FFN 8960): 1.4B transformer.
- ``wan2.1-14b``: diffusers' default ``WanTransformer3DModel`` config, Wan 2.1 T2V 14B: 14.3B.
  Both Wan presets use the Wan 2.1 VAE (127M).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

# Wan 2.1 T2V 1.3B, from its published transformer config; everything else is diffusers' default
# (which is the 14B model).
WAN_1_3B = dict(num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30)


@dataclass(frozen=True)
class RealisticPreset:
    """One realistic-size configuration: which family, transformer overrides, and the job it runs."""

    name: str
    family: Literal["ltx2", "wan"]
    transformer_overrides: dict[str, Any] = field(default_factory=dict)
    height: int = 480
    width: int = 832
    num_frames: int = 121
    fps: int = 24
    steps: int = 30
    guidance_scale: float = 4.0
    text_seq_len: int = 1024  # tokens of prompt_embeds fed instead of running the text encoder

    def describe(self) -> dict[str, Any]:
        return {
            "preset": self.name,
            "family": self.family,
            "resolution": f"{self.width}x{self.height}",
            "num_frames": self.num_frames,
            "fps": self.fps,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "transformer_overrides": dict(self.transformer_overrides),
        }


PRESETS: dict[str, RealisticPreset] = {
    p.name: p
    for p in (
        # LTX-2 makes 8k+1 frames and multiples of 32 pixels: 121 frames is ~5 s at 24 fps.
        RealisticPreset(name="ltx2-19b", family="ltx2", height=512, width=768, num_frames=121, steps=30),
        # Wan makes 4k+1 frames at 16 fps natively; 81 frames at 480p is its reference job.
        RealisticPreset(
            name="wan2.1-1.3b", family="wan", transformer_overrides=WAN_1_3B, num_frames=81, fps=16, steps=30,
            text_seq_len=512,
        ),
        RealisticPreset(name="wan2.1-14b", family="wan", num_frames=81, fps=16, steps=30, text_seq_len=512),
    )
}


@contextlib.contextmanager
def _build_on(device: torch.device, dtype: torch.dtype):
    """Construct modules directly on ``device`` in ``dtype`` (no float32 copy on the host first)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def build_pipeline(
    preset: RealisticPreset,
    device: torch.device,
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
    num_layers: int | None = None,
):
    """Build the diffusers pipeline of ``preset`` with random weights on ``device``.

    Args:
        num_layers: override the transformer depth (every other size stays real). Only for checking
            the code path on a machine without the memory for the full model (tests use 1).
    """
    overrides = dict(preset.transformer_overrides)
    if num_layers is not None:
        overrides["num_layers"] = num_layers
    torch.manual_seed(seed)
    # Schedulers hold small CPU tensors on purpose: build them outside the device context.
    if preset.family == "ltx2":
        from models.generation.ltx2_tiny import build_tiny_scheduler as build_scheduler
    else:
        from models.generation.wan_tiny import build_tiny_wan_scheduler as build_scheduler
    scheduler = build_scheduler()  # the real schedule (only the function's module says tiny)
    with _build_on(device, dtype), torch.no_grad():
        if preset.family == "ltx2":
            from diffusers import (
                AutoencoderKLLTX2Audio,
                AutoencoderKLLTX2Video,
                LTX2Pipeline,
                LTX2VideoTransformer3DModel,
            )
            from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
            from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

            pipe = LTX2Pipeline(
                scheduler=scheduler,
                # The constructor derives 64x / 16x compression from its block list; the released
                # LTX-2 VAE config states 32x / 8x and a non-causal decoder (as ltx2_tiny does).
                vae=AutoencoderKLLTX2Video(
                    spatial_compression_ratio=32, temporal_compression_ratio=8, decoder_causal=False
                ).eval(),
                audio_vae=AutoencoderKLLTX2Audio().eval(),
                text_encoder=None,
                tokenizer=None,
                connectors=LTX2TextConnectors().eval(),
                transformer=LTX2VideoTransformer3DModel(**overrides).eval(),
                vocoder=LTX2Vocoder().eval(),
            )
        else:
            from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel

            pipe = WanPipeline(
                tokenizer=None,
                text_encoder=None,
                transformer=WanTransformer3DModel(**overrides).eval(),
                vae=AutoencoderKLWan().eval(),
                scheduler=scheduler,
            )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def prompt_embeds_for(pipe, preset: RealisticPreset, batch: int, device: torch.device, dtype: torch.dtype) -> dict:
    """Random prompt (and negative prompt) embeddings of the shape the real text encoder gives."""
    if preset.family == "ltx2":
        # Gemma hidden states of every layer, stacked and flattened: caption_channels x (layers + 1).
        width = pipe.connectors.config.caption_channels * pipe.connectors.config.text_proj_in_factor
        shape = (batch, preset.text_seq_len, width)
        mask = torch.ones(batch, preset.text_seq_len, dtype=torch.long, device=device)
        return dict(
            prompt_embeds=torch.randn(shape, device=device, dtype=dtype),
            prompt_attention_mask=mask,
            negative_prompt_embeds=torch.randn(shape, device=device, dtype=dtype),
            negative_prompt_attention_mask=mask,
        )
    shape = (batch, preset.text_seq_len, pipe.transformer.config.text_dim)
    return dict(
        prompt_embeds=torch.randn(shape, device=device, dtype=dtype),
        negative_prompt_embeds=torch.randn(shape, device=device, dtype=dtype),
    )


def run_once(
    pipe,
    preset: RealisticPreset,
    batch: int,
    device: torch.device,
    dtype: torch.dtype = torch.bfloat16,
    *,
    steps: int | None = None,
    height: int | None = None,
    width: int | None = None,
    num_frames: int | None = None,
) -> dict[str, Any]:
    """Generate ``batch`` clips in one pipeline call; return the output shapes and seconds taken."""
    height, width = height or preset.height, width or preset.width
    num_frames = num_frames or preset.num_frames
    kwargs: dict[str, Any] = dict(
        height=height,
        width=width,
        num_frames=num_frames,
        num_inference_steps=steps or preset.steps,
        guidance_scale=preset.guidance_scale,
        generator=torch.Generator(device=device).manual_seed(0),
        output_type="np",
        return_dict=False,
        **prompt_embeds_for(pipe, preset, batch, device, dtype),
    )
    if preset.family == "ltx2":
        # As the Kinora generator runs it: one guidance scale for both modalities, no STG or
        # modality-isolation passes (settings expose neither).
        kwargs.update(
            frame_rate=float(preset.fps),
            audio_guidance_scale=preset.guidance_scale,
            stg_scale=0.0,
            audio_stg_scale=0.0,
            modality_scale=1.0,
            audio_modality_scale=1.0,
            spatio_temporal_guidance_blocks=None,
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    with torch.no_grad():
        out = pipe(**kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    video = out[0]
    audio = out[1] if preset.family == "ltx2" else None
    return {
        "seconds": seconds,
        "video_shape": list(video.shape),
        "audio_shape": list(audio.shape) if audio is not None else None,
    }


def parameter_counts(preset: RealisticPreset) -> dict[str, int]:
    """Count each component's parameters on the meta device (no memory, no weights)."""
    pipe = build_pipeline(preset, torch.device("meta"), dtype=torch.bfloat16)
    return {
        name: sum(p.numel() for p in module.parameters())
        for name, module in pipe.components.items()
        if isinstance(module, torch.nn.Module)
    }
