"""The boundary every generation backend implements: a request in, a :class:`Clip` out.

Backends (one file each: ``ltx2.py``, later ``wan.py``) satisfy :class:`VideoGenerator`
without a shared base class; see STYLE.md rule 8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch


@dataclass(frozen=True)
class ClipRequest:
    """What one clip must look like. Validated by the backend's ``check_inputs``."""

    prompt: str
    width: int
    height: int
    duration_s: float
    fps: int = 24
    seed: int = 0
    negative_prompt: str = ""
    num_inference_steps: int | None = None  # None: the backend's configured default
    reference_image: np.ndarray | None = field(default=None, compare=False)  # uint8 [H, W, 3], cameo conditioning

    @property
    def num_frames(self) -> int:
        """Frames the finished clip has: the requested duration at the requested fps."""
        return round(self.duration_s * self.fps)

    def shape_key(self) -> tuple[int, int, int]:
        """Requests with equal keys can share one batched pipeline call."""
        return (self.width, self.height, self.num_frames)


@dataclass
class Clip:
    """A generated clip before encoding: exactly ``request.num_frames`` frames and matching audio."""

    frames: np.ndarray  # uint8 [F, H, W, 3], RGB
    audio: np.ndarray  # float32 [C, S] in [-1, 1]; S == F / fps * sample_rate
    fps: int
    sample_rate: int
    seed: int
    model_family: str
    model_version: str  # e.g. "ltx2-tiny-random" or the checkpoint folder's name and hash
    timings: dict[str, float] = field(default_factory=dict)  # seconds per pipeline phase
    device: str = "cpu"  # where it was generated, e.g. "cuda:0"

    @property
    def duration_s(self) -> float:
        return self.frames.shape[0] / self.fps


def check_request(request: ClipRequest, settings, *, spatial_multiple: int) -> None:
    """Raise ``ValueError`` naming the field for what every backend refuses alike.

    The platform's limits (prompt length, resolution allowlist, duration, fps) and sane values
    for seeds, steps and a reference image. Backends call it first in ``check_inputs`` and add
    their own checks after it.
    """
    s = settings
    if not request.prompt or not request.prompt.strip():
        raise ValueError("prompt is empty: describe the clip to generate")
    if len(request.prompt) > s.max_prompt_chars:
        raise ValueError(f"prompt has {len(request.prompt)} characters; the limit is {s.max_prompt_chars}")
    if len(request.negative_prompt) > s.max_prompt_chars:
        raise ValueError(
            f"negative_prompt has {len(request.negative_prompt)} characters; the limit is {s.max_prompt_chars}"
        )
    resolution = f"{request.width}x{request.height}"
    if resolution not in s.resolutions:
        raise ValueError(f"resolution (width x height) {resolution} is not one of the allowed {s.resolutions}")
    if request.width % spatial_multiple or request.height % spatial_multiple:
        raise ValueError(
            f"resolution (width x height) {resolution}: width and height must be multiples of {spatial_multiple}"
        )
    if not s.min_duration_s <= request.duration_s <= s.max_duration_s:
        raise ValueError(f"duration_s {request.duration_s} is outside [{s.min_duration_s}, {s.max_duration_s}] seconds")
    if request.fps != s.fps:
        raise ValueError(f"fps {request.fps} is not supported; this deployment generates at {s.fps} fps")
    if request.num_frames < 1:
        raise ValueError(f"duration_s {request.duration_s} at fps {request.fps} gives no frames")
    if request.num_inference_steps is not None and not 1 <= request.num_inference_steps <= 200:
        raise ValueError(f"num_inference_steps {request.num_inference_steps} is outside [1, 200]")
    if not 0 <= request.seed < 2**63:
        raise ValueError(f"seed {request.seed} is outside [0, 2**63)")
    image = request.reference_image
    if image is not None:
        if not isinstance(image, np.ndarray):
            raise ValueError(f"reference_image must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"reference_image must be uint8 [H, W, 3] RGB, got {image.dtype} with shape {image.shape}")
        if min(image.shape[:2]) < 2:
            raise ValueError(f"reference_image of shape {image.shape} is too small (H and W must be >= 2)")


@runtime_checkable
class VideoGenerator(Protocol):
    """A loaded model that turns requests into clips."""

    family: str
    model_version: str

    def check_inputs(self, request: ClipRequest) -> None:
        """Raise ``ValueError`` naming the bad field if the backend cannot honour the request."""

    def generate(self, requests: list[ClipRequest], generator: list[torch.Generator] | None = None) -> list[Clip]:
        """Generate one clip per request; requests in one call share ``shape_key()``."""
