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


@runtime_checkable
class VideoGenerator(Protocol):
    """A loaded model that turns requests into clips."""

    family: str
    model_version: str

    def check_inputs(self, request: ClipRequest) -> None:
        """Raise ``ValueError`` naming the bad field if the backend cannot honour the request."""

    def generate(self, requests: list[ClipRequest], generator: list[torch.Generator] | None = None) -> list[Clip]:
        """Generate one clip per request; requests in one call share ``shape_key()``."""
