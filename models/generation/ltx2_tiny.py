"""Tiny LTX-2 components with random weights: the real diffusers classes, built in code.

Everything :class:`diffusers.LTX2Pipeline` needs (tokenizer, Gemma 3 text encoder, text connectors,
audio-video transformer, video VAE, audio VAE, vocoder, scheduler) is constructed here from small
configs, with deterministic random weights drawn from ``seed``. Nothing is read from disk or a hub.

**The weights are random, so the output is noise** (coloured video noise and a hiss). These
components exist for tests and offline demos: they run every line of the real pipeline (text
encoding, connectors, joint audio-video denoising, VAE decode, vocoder) at a size that makes a
256x256, 49-frame clip in about a second on one CPU thread. They say nothing about quality.

What is kept from the real LTX-2 checkpoint, so shapes and timing behave like the real model:
the video VAE's 32x spatial / 8x temporal compression (patch 4, three 2x up-sampling stages), the
audio VAE's 4x time / 4x mel compression at 16 kHz with a 160-sample hop, a 24 kHz stereo vocoder
(total up-sampling 240), the text connectors with 128 learnable registers, the LTX-2.0 prompt
path (``text_proj_in`` over all Gemma layers), and the dynamically shifted flow-matching schedule.
What is shrunk: every width and depth.

Config fields that must agree (see ``/work/shared/notes/ltx2-offline.md``):

- Gemma hidden size == ``connectors.caption_channels`` == ``transformer.caption_channels``;
- ``connectors.text_proj_in_factor`` == Gemma layers + 1 (the pipeline stacks every hidden state);
- connector heads x head dim == ``caption_channels`` (LTX-2.0 mode);
- transformer ``cross_attention_dim`` == heads x head dim, for video and for audio;
- ``transformer.in_channels`` == video VAE latent channels;
- ``transformer.audio_in_channels`` == audio latent channels x mel bins / 4 == ``audio_vae.base_channels``
  (the audio VAE sizes its latent statistics by ``base_channels``);
- ``vocoder.in_channels`` == 2 x mel bins (stereo mel is flattened into channels).

Reference: LTX-2 (Lightricks, https://github.com/Lightricks/LTX-2) as ported to diffusers 0.42.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from diffusers import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    FlowMatchEulerDiscreteScheduler,
    LTX2VideoTransformer3DModel,
)
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, GemmaTokenizerFast

# --- sizes -------------------------------------------------------------------------------------
TEXT_HIDDEN = 32  # Gemma hidden size == caption_channels everywhere
TEXT_LAYERS = 2  # Gemma decoder layers; the pipeline stacks TEXT_LAYERS + 1 hidden states
VIDEO_LATENT_CHANNELS = 8  # real LTX-2: 128
AUDIO_LATENT_CHANNELS = 4  # real LTX-2: 8
MEL_BINS = 16  # real LTX-2: 64; the audio VAE compresses mel bins 4x
AUDIO_SAMPLE_RATE = 16_000  # mel front end, as in the real checkpoint
AUDIO_HOP_LENGTH = 160  # 100 mel frames per second
VOCODER_UPSAMPLE = [6, 5, 2, 2, 2]  # product 240: 100 mel frames/s -> 24 kHz, as in the real vocoder

# Gemma's special tokens first, in Gemma's order for the first five, then the image markers the
# multimodal config points at. Ids are positions in this list.
_SPECIALS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
]
# A handful of English merges so the model really is BPE (multi-character pieces), not just chars.
_MERGES = [
    ("▁", "t"), ("h", "e"), ("▁t", "he"), ("i", "n"), ("e", "r"), ("a", "n"), ("o", "n"), ("r", "e"),
    ("▁", "a"), ("▁", "s"), ("▁", "c"), ("▁", "o"), ("▁", "w"), ("e", "n"), ("a", "t"), ("o", "r"),
    ("in", "g"), ("e", "d"), ("▁a", "nd"), ("n", "d"), ("▁", "f"), ("▁", "b"), ("▁", "m"), ("i", "s"),
]  # fmt: skip


def build_tiny_tokenizer() -> GemmaTokenizerFast:
    """Build a small Gemma-style BPE tokenizer in memory.

    Gemma's recipe: spaces become ``▁`` by normalisation (no dummy prefix), a BPE model with byte
    fallback (any character outside the vocabulary becomes ``<0xNN>`` byte tokens, so nothing maps to
    ``<unk>``), and a decoder that undoes both. The vocabulary is the specials, the 256 byte tokens,
    printable ASCII plus ``▁``, and the merge results: a few hundred tokens.
    """
    vocab: dict[str, int] = {}
    for token in _SPECIALS:
        vocab[token] = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for char in ["▁"] + [chr(c) for c in range(33, 127)]:
        vocab.setdefault(char, len(vocab))
    for left, right in _MERGES:
        vocab.setdefault(left + right, len(vocab))

    tok = Tokenizer(BPE(vocab=vocab, merges=list(_MERGES), unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    # Same pre-tokenizer transformers' GemmaTokenizer rebuilds on load, so a saved copy tokenises identically.
    tok.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="merged_with_previous", invert=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(_SPECIALS)
    # LTX2Pipeline pads prompts to max_sequence_length (1024) on the left, as Gemma chat prompts are.
    return GemmaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        add_bos_token=True,
        add_eos_token=False,
        padding_side="left",
        model_max_length=1024,
    )


def build_tiny_text_encoder(vocab_size: int) -> Gemma3ForConditionalGeneration:
    """Build a 2-layer Gemma 3 with a 1-layer SigLIP tower (the class needs a vision config)."""
    config = Gemma3Config(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": TEXT_LAYERS,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "query_pre_attn_scalar": 16,
            "sliding_window": 128,
            "max_position_embeddings": 2048,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 2,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 8,
            "patch_size": 2,
        },
        mm_tokens_per_image=4,
        boi_token_index=_SPECIALS.index("<start_of_image>"),
        eoi_token_index=_SPECIALS.index("<end_of_image>"),
        image_token_index=_SPECIALS.index("<image_soft_token>"),
    )
    return Gemma3ForConditionalGeneration(config)


def build_tiny_connectors() -> LTX2TextConnectors:
    """Build the LTX-2.0 text connectors: project all Gemma layers to caption_channels, then 1D transformers."""
    return LTX2TextConnectors(
        caption_channels=TEXT_HIDDEN,
        text_proj_in_factor=TEXT_LAYERS + 1,
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=TEXT_HIDDEN // 2,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=128,  # divides the 1024-token prompt, as in the real model
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=TEXT_HIDDEN // 2,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=128,
        per_modality_projections=False,  # LTX-2.0 path
    )


def build_tiny_transformer() -> LTX2VideoTransformer3DModel:
    """Build a 2-block audio-video DiT (video width 32, audio width 16)."""
    video_heads, video_head_dim = 2, 16
    audio_heads, audio_head_dim = 2, 8
    return LTX2VideoTransformer3DModel(
        in_channels=VIDEO_LATENT_CHANNELS,
        out_channels=VIDEO_LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=video_heads,
        attention_head_dim=video_head_dim,
        cross_attention_dim=video_heads * video_head_dim,
        vae_scale_factors=(8, 32, 32),
        audio_in_channels=AUDIO_LATENT_CHANNELS * MEL_BINS // 4,
        audio_out_channels=AUDIO_LATENT_CHANNELS * MEL_BINS // 4,
        audio_num_attention_heads=audio_heads,
        audio_attention_head_dim=audio_head_dim,
        audio_cross_attention_dim=audio_heads * audio_head_dim,
        audio_sampling_rate=AUDIO_SAMPLE_RATE,
        audio_hop_length=AUDIO_HOP_LENGTH,
        num_layers=2,
        caption_channels=TEXT_HIDDEN,
        perturbed_attn=False,  # LTX-2.0
    )


def build_tiny_video_vae() -> AutoencoderKLLTX2Video:
    """Build the video VAE with the real block structure (32x spatial, 8x temporal) and tiny widths."""
    return AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=VIDEO_LATENT_CHANNELS,
        block_out_channels=(8, 16, 32, 32),
        down_block_types=("LTX2VideoDownBlock3D",) * 4,
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        # The constructor's default formula (patch x 2^scaling stages) gives 64; the real model is 32 / 8.
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )


def build_tiny_audio_vae() -> AutoencoderKLLTX2Audio:
    """Build the audio VAE: stereo mel in, 4x time and 4x mel compression (three ch_mult levels)."""
    return AutoencoderKLLTX2Audio(
        base_channels=AUDIO_LATENT_CHANNELS * MEL_BINS // 4,
        output_channels=2,
        ch_mult=(1, 1, 1),
        num_res_blocks=1,
        in_channels=2,
        latent_channels=AUDIO_LATENT_CHANNELS,
        sample_rate=AUDIO_SAMPLE_RATE,
        mel_hop_length=AUDIO_HOP_LENGTH,
        mel_bins=MEL_BINS,
        causality_axis="height",
        is_causal=True,
    )


def build_tiny_vocoder() -> LTX2Vocoder:
    """Build a small HiFi-GAN-style vocoder: stereo mel frames at 100 Hz to a 24 kHz stereo waveform."""
    return LTX2Vocoder(
        in_channels=2 * MEL_BINS,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[2 * f if f % 2 == 0 else 2 * f + 1 for f in VOCODER_UPSAMPLE],
        upsample_factors=VOCODER_UPSAMPLE,
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3]],
        # A label only: the vocoder's real rate is mel frames/s x its total up-sampling.
        output_sampling_rate=AUDIO_SAMPLE_RATE // AUDIO_HOP_LENGTH * math.prod(VOCODER_UPSAMPLE),
    )


def build_tiny_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """Build the flow-matching Euler scheduler with LTX-2's resolution-dependent (dynamic) shift."""
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        shift_terminal=0.1,
        time_shift_type="exponential",
    )


def build_tiny_ltx2_components(seed: int = 0) -> dict[str, Any]:
    """Build every ``LTX2Pipeline`` component with deterministic random weights; pass as ``LTX2Pipeline(**c)``.

    Each module is initialised from its own RNG state derived from ``seed`` (so resizing one module
    does not change the others' weights), inside a forked RNG so the caller's global torch RNG is
    left as it was. Modules come out in torch's default float32 on CPU (callers move and cast them
    once the pipeline exists) and in ``eval()`` mode: the pipeline never calls ``eval()`` itself,
    and any dropout left on would make output irreproducible.
    """
    tokenizer = build_tiny_tokenizer()
    builders = {
        "text_encoder": lambda: build_tiny_text_encoder(vocab_size=len(tokenizer)),
        "connectors": build_tiny_connectors,
        "transformer": build_tiny_transformer,
        "vae": build_tiny_video_vae,
        "audio_vae": build_tiny_audio_vae,
        "vocoder": build_tiny_vocoder,
    }
    components: dict[str, Any] = {"tokenizer": tokenizer, "scheduler": build_tiny_scheduler()}
    with torch.random.fork_rng(devices=[]):
        for index, (name, build) in enumerate(builders.items()):
            torch.manual_seed(seed * 1000 + index)
            components[name] = build().eval()
    return components
