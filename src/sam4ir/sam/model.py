"""Building and loading a frozen SAM.

Two checkpoint layouts load through the same path (``torch.load`` -> build -> strict
``load_state_dict``):
- an official state dict (``sam_vit_h_4b8939.pth`` ...): the architecture comes from
  ``model_type`` via ``segment_anything.sam_model_registry``;
- ``{"sam_config": {...}, "state_dict": {...}}``: the checkpoint carries the keyword arguments
  of :func:`build_sam`, so small SAMs (the tests' random tiny one) need no preset here.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from sam4ir.errors import Sam4irError
from sam4ir.io import save_torch
from sam4ir.sam.names import SAM_MODEL_TYPES



def build_sam(*, encoder_embed_dim: int, encoder_depth: int, encoder_num_heads: int,
              encoder_global_attn_indexes: list[int], image_size: int = 1024, patch_size: int = 16,
              window_size: int = 14, prompt_embed_dim: int = 256, decoder_depth: int = 2, decoder_mlp_dim: int = 2048,
              decoder_num_heads: int = 8, iou_head_hidden_dim: int = 256, mask_in_chans: int = 16) -> Sam:
    """SAM with every size exposed; the defaults are the official models' fixed values.

    ``segment_anything.build_sam`` hard-codes image size, decoder width and depth; exposing them lets a
    checkpoint describe a small SAM that runs the real encoder/prompt/decoder code in seconds on a CPU.
    """
    embedding_size = image_size // patch_size
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=encoder_depth, embed_dim=encoder_embed_dim, img_size=image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=encoder_num_heads, patch_size=patch_size,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=tuple(encoder_global_attn_indexes),
            window_size=window_size, out_chans=prompt_embed_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_embed_dim, image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(image_size, image_size), mask_in_chans=mask_in_chans),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=decoder_depth, embedding_dim=prompt_embed_dim,
                                          mlp_dim=decoder_mlp_dim, num_heads=decoder_num_heads),
            transformer_dim=prompt_embed_dim, iou_head_depth=3, iou_head_hidden_dim=iou_head_hidden_dim),
    ).eval()


def save_sam_with_config(sam: Sam, sam_config: dict, path: str | os.PathLike) -> None:
    """Write the self-describing layout that :func:`load_sam` reads (used for small, non-official SAMs)."""
    save_torch(path, {"sam_config": dict(sam_config), "state_dict": sam.state_dict()})


def load_sam(model_type: str, checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> Sam:
    """Frozen SAM in eval mode on ``device``; one-line error for a missing, unreadable or mismatched file."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise Sam4irError(f"{checkpoint}: SAM checkpoint not found")
    try:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated/foreign files
        raise Sam4irError(f"{checkpoint}: not a readable SAM checkpoint ({_first_line(err)})") from None
    if isinstance(ckpt, dict) and "sam_config" in ckpt:
        what = "the architecture in its sam_config"
        try:
            sam, state = build_sam(**ckpt["sam_config"]), ckpt["state_dict"]
        except (TypeError, KeyError, ValueError, AssertionError) as err:
            raise Sam4irError(f"{checkpoint}: bad sam_config ({_first_line(err)})") from None
    elif model_type in SAM_MODEL_TYPES:
        what = f"SAM {model_type}"
        sam, state = sam_model_registry[model_type](), ckpt
    else:
        raise Sam4irError(f"{checkpoint}: unknown SAM model type {model_type!r} (use one of {list(SAM_MODEL_TYPES)})")
    if not isinstance(state, dict):
        raise Sam4irError(f"{checkpoint}: expected a state dict, found {type(state).__name__}")
    problem = _state_mismatch(sam, state)
    if problem:
        raise Sam4irError(f"{checkpoint}: does not match {what} ({problem})")
    sam.load_state_dict(state, strict=True)
    return sam.to(device).eval().requires_grad_(False)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; an unavailable CUDA device is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise Sam4irError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Sam4irError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def _state_mismatch(module: torch.nn.Module, state: dict) -> str | None:
    """Why ``state`` would fail a strict load, in one line (torch's own message spans many)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        return f"{len(missing)} missing keys, e.g. {missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}"
    for key, value in expected.items():
        if not isinstance(state[key], torch.Tensor) or state[key].shape != value.shape:
            got = tuple(state[key].shape) if isinstance(state[key], torch.Tensor) else type(state[key]).__name__
            return f"{key} has shape {got}, expected {tuple(value.shape)}"
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
