"""The public checkpoint formats: which keys of each released file belong to the model, and their renames.

Pure description, no torch: a conf names its checkpoint's format, and reading a conf checks the name here
without loading any model code. :mod:`sasv.models.checkpoints` applies a format when it loads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

from sasv.errors import SasvError


class CheckpointError(SasvError, RuntimeError):
    """A checkpoint is missing, unreadable, unsafe, or does not fit the model it is loaded into."""


@dataclass(frozen=True)
class CheckpointFormat:
    """How the keys of one public checkpoint format map onto this package's modules.

    ``nested_key``: the state dict lives under this key of the saved dict (``{'model': sd, ...}``).
    ``model_prefix``: only keys with this prefix belong to the model; it is stripped.
    ``ignored_prefixes``: keys (checked before prefix stripping) that are known extras, e.g. the loss head.
    ``renames``: (old key prefix, new key prefix) pairs applied after stripping, first match wins.
    ``config_objects``: the file also pickles config objects (fairseq's), read by the restricted unpickler of
    :mod:`sasv.models.fairseq_checkpoint` instead of plain ``weights_only`` loading.
    """

    name: str
    nested_key: str | None = None
    model_prefix: str = ""
    ignored_prefixes: tuple[str, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    description: str = ""
    config_objects: bool = False


def _mel_frontend_renames(old: str) -> tuple[tuple[str, str], ...]:
    """torchaudio's Sequential(PreEmphasis, MelSpectrogram) buffer names -> ``LogMelFrontend``'s."""
    return (
        (f"{old}.0.flipped_filter", "frontend.preemphasis_filter"),
        (f"{old}.1.spectrogram.window", "frontend.window"),
        (f"{old}.1.mel_scale.fb", "frontend.mel_fb"),
    )


def _fairseq_encoder_renames(prefix: str) -> tuple[tuple[str, str], ...]:
    """fairseq's anonymous nn.Sequential indices in a WavLM / wav2vec 2.0 network under ``prefix`` ->
    :mod:`sasv.models.wavlm`'s named modules, for the 7 conv layers every released model has:
    ``conv_layers.N.0`` = the conv, ``.N.2.1`` = its LayerNorm, and the weight-normed positional conv
    ``pos_conv.0`` (weight_g / weight_v / bias)."""
    return tuple(
        (
            f"{prefix}feature_extractor.conv_layers.{i}.{old}.",
            f"{prefix}feature_extractor.conv_layers.{i}.{new}.",
        )
        for i in range(7)
        for old, new in (("0", "conv"), ("2.1", "norm"))
    ) + ((f"{prefix}encoder.pos_conv.0.", f"{prefix}encoder.pos_conv."),)


def _wav2vec2_pretraining_prefixes(prefix: str) -> tuple[str, ...]:
    """The parts of a fairseq ``Wav2Vec2Model`` under ``prefix`` that only pre-training uses (the quantizer of
    the targets and the two projections of the contrastive loss): no ``features_only`` forward reads them."""
    return tuple(f"{prefix}{name}." for name in ("quantizer", "project_q", "final_proj"))


def _unispeech_ecapa_head_renames() -> tuple[tuple[str, str], ...]:
    """UniSpeech ECAPA_TDNN head names -> the shared blocks of ``sasv.models.blocks`` (SE-Res2Block, pooling).

    The head always has three SE-Res2Blocks (``layer2..4``); its attentive pooling module becomes the
    model's ``attention`` network (conv, tanh, conv).
    """
    block = (
        ("Conv1dReluBn1.conv.", "conv1."),
        ("Conv1dReluBn1.bn.", "bn1."),
        ("Res2Conv1dReluBn.", ""),  # .convs.N / .bns.N
        ("Conv1dReluBn2.conv.", "conv3."),
        ("Conv1dReluBn2.bn.", "bn3."),
        ("SE_Connect.linear1.", "se.fc.0."),
        ("SE_Connect.linear2.", "se.fc.2."),
    )
    return tuple((f"layer{i}.{old}", f"layer{i}.{new}") for i in (2, 3, 4) for old, new in block) + (
        ("pooling.linear1.", "attention.0."),
        ("pooling.linear2.", "attention.2."),
    )


FORMATS: dict[str, CheckpointFormat] = {
    f.name: f
    for f in (
        CheckpointFormat(
            name="plain",
            description="a plain state dict whose keys are this package's module names",
        ),
        CheckpointFormat(
            name="taoruijie_ecapa",
            model_prefix="speaker_encoder.",
            ignored_prefixes=("speaker_loss.",),
            renames=_mel_frontend_renames("torchfbank"),
            description="TaoRuijie/ECAPA-TDNN exps/pretrain.model (speaker_encoder.* + speaker_loss.*)",
        ),
        CheckpointFormat(
            name="voxceleb_trainer",
            model_prefix="__S__.",
            ignored_prefixes=("__L__.",),
            renames=_mel_frontend_renames("torchfb"),
            description="clovaai/voxceleb_trainer SpeakerNet (__S__.* model + __L__.* loss head)",
        ),
        CheckpointFormat(
            name="doubleroc_resnet",
            renames=_mel_frontend_renames("torchfb"),
            description="SASV2022_DoubleRoc Res2Net50V2 res2net50v2.model (plain state dict, torchfb.*)",
        ),
        CheckpointFormat(
            name="doubleroc_res2next",
            renames=_mel_frontend_renames("torchfbank"),
            description="SASV2022_DoubleRoc Res2NeXt50 res2next50.model (plain state dict, torchfbank.*)",
        ),
        CheckpointFormat(
            name="clovaai_aasist",
            description="clovaai/aasist models/weights/AASIST.pth and AASIST-L.pth (plain state dict)",
        ),
        CheckpointFormat(
            name="unispeech_wavlm_ecapa",
            nested_key="model",
            ignored_prefixes=("loss_calculator.",),
            renames=_fairseq_encoder_renames("feature_extract.model.") + _unispeech_ecapa_head_renames(),
            description="microsoft/UniSpeech speaker_verification {'model': sd, 'best_valid_eer': float}",
        ),
        CheckpointFormat(
            name="ssl_aasist",
            ignored_prefixes=_wav2vec2_pretraining_prefixes("ssl_model.model."),
            renames=_fairseq_encoder_renames("ssl_model.model."),
            description="TakHemlata/SSL_Anti-spoofing LA_model.pth / DF_model.pth (torch.save of the "
            "Model's state dict: ssl_model.model.* = fairseq's Wav2Vec2Model, then the AASIST back end)",
        ),
        CheckpointFormat(
            name="fairseq_pretrained",
            nested_key="model",
            ignored_prefixes=_wav2vec2_pretraining_prefixes(""),
            renames=_fairseq_encoder_renames(""),
            description="a self-supervised encoder's pre-training checkpoint in fairseq's layout ({'cfg', "
            "'model', ...}: XLS-R's xlsr2_300m.pt, WavLM-Large.pt), read by the restricted unpickler of "
            "sasv.models.fairseq_checkpoint",
            config_objects=True,
        ),
    )
}


def register_format(fmt: CheckpointFormat) -> None:
    FORMATS[fmt.name] = fmt


def get_format(name: str) -> CheckpointFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise CheckpointError(
            f"unknown checkpoint format {name!r}; known formats: {', '.join(sorted(FORMATS))}"
        ) from None
