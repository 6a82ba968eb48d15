"""Realistic-size presets: the real layer sizes, counted on the meta device (no memory, no weights)."""

from __future__ import annotations

import pytest

from models.generation.presets import PRESETS, parameter_counts


@pytest.mark.parametrize(
    ("name", "transformer_b"),
    [("ltx2-19b", 18.876), ("wan2.1-1.3b", 1.419), ("wan2.1-14b", 14.288)],
)
def test_preset_transformer_has_the_published_size(name, transformer_b):
    counts = parameter_counts(PRESETS[name])
    assert counts["transformer"] / 1e9 == pytest.approx(transformer_b, abs=0.005)


def test_ltx2_preset_builds_every_component_at_release_size():
    counts = {k: round(v / 1e9, 3) for k, v in parameter_counts(PRESETS["ltx2-19b"]).items()}
    # LTX-2.0 release sizes (see ../shared/notes/ltx2-offline.md): connectors 1.4B, video VAE ~1.2B,
    # audio VAE 53M, vocoder 56M; the Gemma text encoder is left out on purpose.
    assert counts == {"transformer": 18.876, "connectors": 1.431, "vae": 1.222, "audio_vae": 0.053, "vocoder": 0.056}


def test_every_preset_makes_frame_counts_the_model_accepts():
    for preset in PRESETS.values():
        multiple = 8 if preset.family == "ltx2" else 4
        assert (preset.num_frames - 1) % multiple == 0, preset.name
        assert preset.height % 32 == 0 and preset.width % 32 == 0 or preset.family == "wan", preset.name
        assert preset.height % 16 == 0 and preset.width % 16 == 0, preset.name
