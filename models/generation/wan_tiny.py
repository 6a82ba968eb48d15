"""Tiny Wan and AudioLDM2 components with random weights: the real diffusers classes, built in code.

Everything :class:`diffusers.WanPipeline` needs (a UMT5 tokenizer and encoder, the Wan DiT, the Wan
VAE, the flow-matching UniPC scheduler) and everything :class:`diffusers.AudioLDM2Pipeline` needs
(CLAP and Flan-T5 text encoders with their tokenizers, the projection model, the GPT-2 language
model, the two-condition UNet, the mel VAE, the HiFi-GAN vocoder, the DDIM scheduler) is constructed
here from small configs, with deterministic random weights drawn from ``seed``. Nothing is read
from disk or a hub: the tokenizers are built in memory from a small vocabulary.

**The weights are random, so the output is noise** (coloured video noise and a hiss). These
components exist for tests and offline demos: they run every line of the real pipelines at a size
that makes a 256x256, 1 s clip with sound in about 0.7 s on one CPU thread (almost all of it the
video VAE's decoder). They say nothing about quality.

What is kept from the real checkpoints, so shapes and timing behave like the real models:

- Wan: the geometry of Wan 2.2 TI2V-5B, the one Wan checkpoint that does text-to-video and
  image-to-video with the *same* weights: a residual VAE that patchifies 2x2 and then down-samples
  8x (16x spatial, 4x temporal, frames 4k+1), a DiT with 1x2x2 patches (so sizes are multiples of
  32), per-token timesteps (``expand_timesteps``), and the UniPC flow-matching scheduler with
  ``flow_shift=5``. Because of this, ``WanImageToVideoPipeline`` runs over these very components.
- AudioLDM2: 16 kHz mono audio from 64-bin log-mel frames at 100 per second (HiFi-GAN up-sampling
  5x4x2x2x2 = 160 samples per frame), an 8x mel VAE, CLAP (pooled) plus T5 (sequence) prompts
  projected into GPT-2, which generates 8 extra hidden states, and a UNet that attends to both.

What is shrunk: every width, depth and vocabulary.

References: Wan (https://github.com/Wan-Video/Wan2.2); AudioLDM 2 (Liu et al. 2023,
https://arxiv.org/abs/2308.05734); diffusers 0.42 ``pipelines/wan`` and ``pipelines/audioldm2``.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AudioLDM2ProjectionModel,
    AudioLDM2UNet2DConditionModel,
    AutoencoderKL,
    AutoencoderKLWan,
    DDIMScheduler,
    UniPCMultistepScheduler,
    WanTransformer3DModel,
)
from tokenizers import pre_tokenizers
from transformers import (
    ClapAudioConfig,
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
    ClapTextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    RobertaTokenizer,
    SpeechT5HifiGan,
    SpeechT5HifiGanConfig,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
    UMT5Config,
    UMT5EncoderModel,
)

# --- Wan sizes ---------------------------------------------------------------------------------
WAN_TEXT_DIM = 32  # UMT5 d_model == transformer text_dim (real: 4096)
WAN_LATENT_CHANNELS = 16  # VAE z_dim == transformer in/out channels (real TI2V-5B: 48)
WAN_VAE_PATCH = 2  # the Wan 2.2 VAE folds 2x2 pixels into channels before its 8x down-sampling
WAN_SPATIAL_COMPRESSION = 16  # WAN_VAE_PATCH x 2^3 down-sampling stages
WAN_TEMPORAL_COMPRESSION = 4  # two temporal down-sampling stages: frames must be 4k+1

# --- AudioLDM2 sizes ---------------------------------------------------------------------------
AUDIO_SAMPLE_RATE = 16_000  # as in the real AudioLDM2
MEL_BINS = 64  # vocoder model_in_dim, as in the real checkpoint
VOCODER_UPSAMPLE = [5, 4, 2, 2, 2]  # product 160 == mel hop: 100 mel frames per second
CLAP_PROJECTION = 16  # CLAP text projection == projection_model.text_encoder_dim (real: 512)
T5_DIM = 32  # Flan-T5 d_model == projection_model.text_encoder_1_dim == UNet's third attention (real: 1024)
GPT2_DIM = 24  # GPT-2 n_embd == projection width == UNet's second attention (real: 768)
PROMPT_TOKENS = 64  # tokenizer model_max_length for both AudioLDM2 tokenizers (real: 512)

# Common English pieces, so the tokenizers really make multi-character tokens (not just characters).
_WORDS = (
    "the a an and of in on with to at by for from is are runs run walks flies through over under "
    "red blue green white black fox dog cat bird whale sea ocean snow rain wind forest city street "
    "night day sun light fire water music piano drum voice crowd car train slow fast calm loud"
).split()


def build_tiny_t5_tokenizer(model_max_length: int) -> T5Tokenizer:
    """Build a T5-style SentencePiece-Unigram tokenizer in memory (the class Wan's UMT5 and Flan-T5 use).

    Layout as in T5: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, then pieces. Pieces are ``▁`` plus
    printable ASCII, each character also with a ``▁`` prefix, and a few whole words that Unigram
    prefers (higher score) over spelling them out. Characters outside ASCII map to ``<unk>``.
    """
    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    chars = [chr(c) for c in range(33, 127)]
    vocab += [(c, -8.0) for c in chars] + [("▁" + c, -7.0) for c in chars]
    vocab += [("▁" + w, -4.0) for w in _WORDS]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=model_max_length)


def build_tiny_roberta_tokenizer(model_max_length: int) -> RobertaTokenizer:
    """Build a RoBERTa-style byte-level BPE tokenizer in memory (the class CLAP's text branch uses).

    Specials in RoBERTa's order (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, ``<mask>`` 4), the
    256 byte symbols (so any text encodes without ``<unk>``), and merges spelling out ``_WORDS``.
    """
    vocab: dict[str, int] = {}
    for token in ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] + sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:  # merge left to right: Ġ+w, Ġw+o, Ġwo+r, ...
        piece = "Ġ"
        for char in word:
            if piece + char not in vocab:
                merges.append((piece, char))
                vocab[piece + char] = len(vocab)
            piece += char
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


# --- Wan ---------------------------------------------------------------------------------------
def build_tiny_umt5(vocab_size: int) -> UMT5EncoderModel:
    """Build a 2-layer UMT5 encoder (Wan's text encoder class; real: umt5-xxl)."""
    return UMT5EncoderModel(
        UMT5Config(
            vocab_size=vocab_size,
            d_model=WAN_TEXT_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=32,
            relative_attention_max_distance=128,
            dropout_rate=0.0,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )


def build_tiny_wan_transformer() -> WanTransformer3DModel:
    """Build a 2-block Wan DiT, width 32 (2 heads of 16: RoPE splits 16 into t/h/w = 8/4/4)."""
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=WAN_LATENT_CHANNELS,
        out_channels=WAN_LATENT_CHANNELS,
        text_dim=WAN_TEXT_DIM,
        freq_dim=32,
        ffn_dim=64,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
    )


def build_tiny_wan_vae() -> AutoencoderKLWan:
    """Build the Wan 2.2 residual VAE (2x2 patchify, 8x spatial and 4x temporal down-sampling), tiny widths."""
    return AutoencoderKLWan(
        # Decoding runs at 128x128 after the 2x2 patchify, and the top stage's 3D convolutions dominate
        # a tiny clip's run time: the decoder is the narrowest that keeps the real block structure
        # (widths 2-8; widths 4-16 took twice as long). The encoder runs once per cameo image only.
        base_dim=4,
        decoder_base_dim=2,
        z_dim=WAN_LATENT_CHANNELS,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=1,  # the decoder uses num_res_blocks + 1 per stage; the residual encoder needs >= 1
        attn_scales=[],
        temperal_downsample=[False, True, True],
        # Random weights give unit-scale latents already; the real checkpoint stores measured statistics.
        latents_mean=[0.0] * WAN_LATENT_CHANNELS,
        latents_std=[1.0] * WAN_LATENT_CHANNELS,
        is_residual=True,
        in_channels=3 * WAN_VAE_PATCH**2,
        out_channels=3 * WAN_VAE_PATCH**2,
        patch_size=WAN_VAE_PATCH,
        scale_factor_temporal=WAN_TEMPORAL_COMPRESSION,
        scale_factor_spatial=WAN_SPATIAL_COMPRESSION,
    )


def build_tiny_wan_scheduler() -> UniPCMultistepScheduler:
    """Build the UniPC multistep scheduler in flow-matching mode, as the real Wan checkpoints ship it."""
    return UniPCMultistepScheduler(
        num_train_timesteps=1000,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=5.0,
        solver_order=2,
        predict_x0=True,
        solver_type="bh2",
        lower_order_final=True,
    )


def build_tiny_wan_components(seed: int = 0) -> dict[str, Any]:
    """Build every ``WanPipeline`` component with deterministic random weights; pass as ``WanPipeline(**c)``.

    The dict includes ``expand_timesteps=True`` (a pipeline config flag, not a module): the
    TI2V-style per-token timesteps that let ``WanImageToVideoPipeline`` share these components.

    Each module is initialised from its own RNG state derived from ``seed`` (so resizing one module
    does not change the others' weights), inside a forked RNG so the caller's global torch RNG is
    left as it was. Modules come out in float32 on CPU and in ``eval()`` mode: the pipeline never
    calls ``eval()`` itself, and any dropout left on would make output irreproducible.
    """
    tokenizer = build_tiny_t5_tokenizer(model_max_length=512)  # WanPipeline pads prompts to 512 tokens
    builders = {
        "text_encoder": lambda: build_tiny_umt5(vocab_size=len(tokenizer)),
        "transformer": build_tiny_wan_transformer,
        "vae": build_tiny_wan_vae,
    }
    components: dict[str, Any] = {
        "tokenizer": tokenizer,
        "scheduler": build_tiny_wan_scheduler(),
        "expand_timesteps": True,
    }
    with torch.random.fork_rng(devices=[]):
        for index, (name, build) in enumerate(builders.items()):
            torch.manual_seed(seed * 1000 + index)
            components[name] = build().eval()
    return components


# --- AudioLDM2 ---------------------------------------------------------------------------------
def build_tiny_clap(vocab_size: int) -> ClapModel:
    """Build CLAP with a 1-layer text branch and a minimal audio branch.

    The pipeline uses only the text branch's pooled projection; the audio branch (HTSAT) exists
    because ``ClapModel`` needs one, and is used only to rank several waveforms per prompt.
    """
    text = ClapTextConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=PROMPT_TOKENS + 2,  # RoBERTa positions start after padding_idx (1)
        projection_dim=CLAP_PROJECTION,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    audio = ClapAudioConfig(
        spec_size=8,
        window_size=4,
        num_mel_bins=8,
        patch_size=2,
        patch_stride=2,
        patch_embed_input_channels=4,
        patch_embeds_hidden_size=8,
        hidden_size=16,
        depths=[1, 1],
        num_attention_heads=[1, 1],
        num_hidden_layers=2,
        intermediate_size=32,
        projection_dim=CLAP_PROJECTION,
        hidden_dropout_prob=0.0,
    )
    return ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=CLAP_PROJECTION))


def build_tiny_flan_t5(vocab_size: int) -> T5EncoderModel:
    """Build a 1-layer T5 encoder (AudioLDM2's second text encoder; real: Flan-T5-large)."""
    return T5EncoderModel(
        T5Config(
            vocab_size=vocab_size,
            d_model=T5_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=1,
            num_heads=4,
            dropout_rate=0.0,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )


def build_tiny_projection() -> AudioLDM2ProjectionModel:
    """Build the projection of both prompt encodings into GPT-2's width (with learned SOS/EOS embeddings)."""
    return AudioLDM2ProjectionModel(
        text_encoder_dim=CLAP_PROJECTION, text_encoder_1_dim=T5_DIM, langauge_model_dim=GPT2_DIM
    )


def build_tiny_gpt2() -> GPT2LMHeadModel:
    """Build a 1-layer GPT-2 that extends the projected prompt by 8 hidden states, as the real model does."""
    config = GPT2Config(
        vocab_size=16,  # never used: the pipeline feeds embeddings, not token ids
        n_embd=GPT2_DIM,
        n_head=2,
        n_layer=1,
        n_positions=2 * PROMPT_TOKENS + 16,  # SOS + CLAP + EOS + SOS + T5 tokens + EOS + 8 generated
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    config.max_new_tokens = 8  # read by AudioLDM2Pipeline.generate_language_model, as in the real config
    return GPT2LMHeadModel(config)


def build_tiny_audio_unet() -> AudioLDM2UNet2DConditionModel:
    """Build the AudioLDM2 UNet: per layer, self-attention, then GPT-2 states, then T5 states (as the real one)."""
    attention = (None, GPT2_DIM, T5_DIM)  # idx 0-1 attend to GPT-2 states, idx 2 to T5's; None: self-attention
    return AudioLDM2UNet2DConditionModel(
        in_channels=8,
        out_channels=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DCrossAttn",
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=[attention, attention],
        attention_head_dim=8,
    )


def build_tiny_mel_vae() -> AutoencoderKL:
    """Build the mel-spectrogram VAE: 1 channel in, 8 latent channels, 8x down-sampling (four levels)."""
    return AutoencoderKL(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=8,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=1.0,
    )


def build_tiny_vocoder() -> SpeechT5HifiGan:
    """Build a small HiFi-GAN: 64-bin log-mel frames at 100 Hz to a 16 kHz mono waveform."""
    return SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=MEL_BINS,
            sampling_rate=AUDIO_SAMPLE_RATE,
            upsample_initial_channel=64,  # halved per stage: 32, 16, 8, 4, 2 channels
            upsample_rates=VOCODER_UPSAMPLE,
            upsample_kernel_sizes=[2 * r for r in VOCODER_UPSAMPLE],
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]],
            normalize_before=False,
            # HiFi-GAN multiplies five up-sampling stages: at the default init (0.01) random weights give
            # ~1e-9 (silence); 0.15 gives hiss around -30 dBFS, so the loudness stage has real work to do.
            initializer_range=0.15,
        )
    )


def build_tiny_audio_scheduler() -> DDIMScheduler:
    """Build the DDIM scheduler with AudioLDM2's beta schedule (deterministic at ``eta=0``)."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.0015,
        beta_end=0.0195,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )


def build_tiny_audio_components(seed: int = 0) -> dict[str, Any]:
    """Build every ``AudioLDM2Pipeline`` component with random weights from ``seed``; use as ``AudioLDM2Pipeline(**c)``.

    Seeding, RNG isolation, dtype and ``eval()`` as in :func:`build_tiny_wan_components`. The
    tokenizers are real ``RobertaTokenizer`` and ``T5Tokenizer`` instances: the pipeline picks its
    padding and prompt handling by ``isinstance`` on exactly those classes.
    """
    tokenizer = build_tiny_roberta_tokenizer(model_max_length=PROMPT_TOKENS)
    tokenizer_2 = build_tiny_t5_tokenizer(model_max_length=PROMPT_TOKENS)
    builders = {
        "text_encoder": lambda: build_tiny_clap(vocab_size=len(tokenizer)),
        "text_encoder_2": lambda: build_tiny_flan_t5(vocab_size=len(tokenizer_2)),
        "projection_model": build_tiny_projection,
        "language_model": build_tiny_gpt2,
        "unet": build_tiny_audio_unet,
        "vae": build_tiny_mel_vae,
        "vocoder": build_tiny_vocoder,
    }
    components: dict[str, Any] = {
        "tokenizer": tokenizer,
        "tokenizer_2": tokenizer_2,
        # Only used to rank several waveforms per prompt (never here); defaults need no files.
        "feature_extractor": ClapFeatureExtractor(),
        "scheduler": build_tiny_audio_scheduler(),
    }
    with torch.random.fork_rng(devices=[]):
        for index, (name, build) in enumerate(builders.items()):
            torch.manual_seed(seed * 1000 + 100 + index)
            components[name] = build().eval()
    return components
