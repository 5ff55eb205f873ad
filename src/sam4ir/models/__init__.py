"""The IR networks by name, and their weights in and out.

``MODELS`` is the only place that maps ``model.name`` in params.yaml to a network class of ours; ``build`` takes
the original constructors' argument names, so a released configuration's options carry over unchanged. Any other
network is named by import path (``package.module:ClassName``, see :mod:`sam4ir.models.imported`).
``load_weights`` reads our checkpoints and the official BasicSR-style ``.pth`` files alike.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Callable, Mapping, Optional

import torch
from torch import Tensor, nn

from sam4ir.errors import Sam4irError
from sam4ir.io import save_torch
from sam4ir.models.base import NetworkError, RestorationNet, RestorationOutput
from sam4ir.models.hinet import HINet
from sam4ir.models.imported import build_imported, check_imported, is_import_path, locate
from sam4ir.models.nafnet import NAFNet
from sam4ir.models.restormer import Restormer
from sam4ir.models.wrap import PlainNet

__all__ = ["MODELS", "ForeignCheckpoint", "NetworkError", "PlainNet", "RestorationNet", "RestorationOutput", "build",
           "check_imported", "count_params", "is_import_path", "load_model", "load_weights", "locate",
           "no_feature_layer", "save_model"]

MODELS: dict[str, Callable[..., RestorationNet]] = {"nafnet": NAFNet, "hinet": HINet, "restormer": Restormer}

_WRAPPER_KEYS = ("params_ema", "params", "state_dict")  # BasicSR saves EMA weights first when it has them
_SHOWN = 3  # offending keys named in an error message


class ForeignCheckpoint(Sam4irError):
    """A readable checkpoint without sam4ir's metadata (an official release): the caller can say what to add."""


def build(name: str, *, feature_layer: Optional[str] = None, **kwargs) -> RestorationNet:
    """Network ``name`` (a key of ``MODELS``, or an import path) built with its constructor's keyword arguments.

    ``feature_layer``: the submodule of a plain ``nn.Module`` whose output SPD/SGR compare (None: the wrapper's
    default); our networks and RestorationNet subclasses give their features themselves.
    """
    if name not in MODELS:
        if is_import_path(name):
            return build_imported(name, feature_layer, kwargs)
        raise Sam4irError(f"model.name: unknown model {name!r}; known: {', '.join(MODELS)}, or an import path "
                          "(package.module:ClassName)")
    no_feature_layer(name, feature_layer)
    cls = MODELS[name]
    accepted = inspect.signature(cls).parameters
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        raise Sam4irError(f"model.args.{unknown[0]}: {name} has no such argument; it takes {', '.join(accepted)}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, RuntimeError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise Sam4irError(f"model.args: cannot build {name} from {kwargs}: {first_line}") from err
    except Sam4irError as err:
        raise Sam4irError(f"model.args: {name}: {err}") from err


def no_feature_layer(name: str, feature_layer: Optional[str]) -> None:
    """Our networks give their decoder's features themselves: a feature layer named for one is a mistake."""
    if feature_layer is not None:
        raise NetworkError("model.feature_layer", f"{name} gives its decoder's features itself; the param is for "
                                                  "plain nn.Module networks (set it to null)")


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not); works on meta-device models."""
    return sum(p.numel() for p in model.parameters())


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> None:
    """Load a checkpoint into ``model`` in place.

    Accepts a bare state dict or one wrapped under ``params_ema`` / ``params`` / ``state_dict`` (first found wins),
    with or without DDP's ``module.`` prefix. ``strict=False`` tolerates missing and unexpected keys, never a
    shape mismatch. Any failure is a one-line Sam4irError naming the file and the first offending keys.
    """
    path = Path(path)
    state = _unwrap(_read(path), path)
    problems = _mismatches(model.state_dict(), state, strict)
    if problems:
        raise Sam4irError(f"{path}: does not fit {type(model).__name__}: {'; '.join(problems)}")
    model.load_state_dict(state, strict=strict)


def save_model(path: str | os.PathLike, net: nn.Module, name: str, kwargs: dict) -> None:
    """Weights under BasicSR's ``params`` key (so BasicSR and :func:`load_weights` read them) plus the registry
    name or import path, the constructor arguments and a wrapped network's feature layer, so :func:`load_model`
    can rebuild the network without params.yaml."""
    meta = {"params": net.state_dict(), "model": name, "model_args": kwargs}
    if isinstance(net, PlainNet):
        meta["feature_layer"] = net.feature_layer
    save_torch(path, meta)


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> RestorationNet:
    """Rebuild and load a network saved by :func:`save_model`, in eval mode on ``device``."""
    path = Path(path)
    meta = _read(path)
    if not isinstance(meta, Mapping):
        raise Sam4irError(f"{path}: not a checkpoint (a torch file holding a {type(meta).__name__}, not a dict)")
    if "model" not in meta or "model_args" not in meta:
        raise ForeignCheckpoint(f"{path}: not a sam4ir checkpoint (no 'model'/'model_args'); build the network "
                                "and use load_weights for official checkpoints")
    try:
        net = build(meta["model"], feature_layer=meta.get("feature_layer"), **meta["model_args"])
    except Sam4irError as err:  # e.g. the network's package is not importable here
        raise Sam4irError(f"{path}: {err}") from err
    load_weights(net, path)
    return net.to(device).eval()


def _read(path: Path) -> object:
    """``torch.load`` of a checkpoint (tensors and plain containers only), one-line errors."""
    if not path.is_file():
        raise Sam4irError(f"{path}: checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors alike for a bad file
        raise Sam4irError(f"{path}: not a readable torch checkpoint: truncated, or not a checkpoint at all "
                          f"({type(err).__name__})") from err


def _unwrap(ckpt: object, path: Path) -> dict[str, Tensor]:
    """The state dict inside a checkpoint, keys without the ``module.`` prefix."""
    if isinstance(ckpt, Mapping):
        ckpt = next((ckpt[key] for key in _WRAPPER_KEYS if key in ckpt), ckpt)
    if not isinstance(ckpt, Mapping) or not all(isinstance(v, Tensor) for v in ckpt.values()):
        raise Sam4irError(f"{path}: no state dict found (expected tensors, optionally under {'/'.join(_WRAPPER_KEYS)})")
    return {key.removeprefix("module."): value for key, value in ckpt.items()}


def _mismatches(expected: Mapping[str, Tensor], given: Mapping[str, Tensor], strict: bool) -> list[str]:
    """Human-readable key/shape problems, each listing at most ``_SHOWN`` keys."""
    def listed(keys: list[str]) -> str:
        more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
        return ", ".join(keys[:_SHOWN]) + more

    problems = []
    if strict:
        missing = [key for key in expected if key not in given]
        unexpected = [key for key in given if key not in expected]
        if missing:
            problems.append(f"missing keys {listed(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {listed(unexpected)}")
    shapes = [f"{key} {list(given[key].shape)} vs model {list(value.shape)}"
              for key, value in expected.items() if key in given and given[key].shape != value.shape]
    if shapes:
        problems.append(f"shape mismatch {listed(shapes)}")
    return problems
