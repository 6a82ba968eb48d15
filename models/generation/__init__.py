"""Generation backends behind one small protocol (:class:`~models.generation.types.VideoGenerator`)."""

from __future__ import annotations

from kinora.settings import GenerationSettings
from models.generation.types import Clip, ClipRequest, VideoGenerator

__all__ = ["Clip", "ClipRequest", "VideoGenerator", "load_generator"]


def load_generator(settings: GenerationSettings) -> VideoGenerator:
    """Load the family that settings name (imports only that family's code)."""
    if settings.family == "ltx2":
        from models.generation.ltx2 import LTX2Generator

        return LTX2Generator.from_settings(settings)
    if settings.family == "wan":
        from models.generation.wan import WanGenerator

        return WanGenerator.from_settings(settings)
    raise ValueError(f"unknown generation family {settings.family!r}")
