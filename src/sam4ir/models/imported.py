"""Networks of the user's own, named by import path: ``package.module:ClassName`` (or ``package.module.ClassName``).

Nothing here lists the user's classes: ``model.name`` holds the path, ``model.args.<model.name>`` (the dotted key,
nested by the path's dots as DVC reads params keys) its constructor arguments. A :class:`RestorationNet` subclass
is used as-is; any other ``nn.Module`` mapping B x 3 x H x W to B x 3 x H x W (or a function returning one) is
wrapped by :class:`sam4ir.models.wrap.PlainNet`. Each problem is one line naming its param.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any, Callable, Optional

import torch
from torch import nn

from sam4ir.models.base import NetworkError, RestorationNet
from sam4ir.models.wrap import PlainNet

_IDENT = r"[A-Za-z_]\w*"
_PATH = re.compile(rf"{_IDENT}(\.{_IDENT})*(:{_IDENT})?")
_SPF_ARG = "extra_in_channels"  # what IR2 is built with: the SPF prior channels


def is_import_path(name: str) -> bool:
    """Whether ``name`` has the shape of an import path (a module and a name in it) rather than a registry key."""
    return bool(_PATH.fullmatch(name)) and ("." in name or ":" in name)


def locate(path: str) -> Callable[..., nn.Module]:
    """The class (or builder function) ``path`` names, imported."""
    module_name, colon, attr = path.partition(":")
    if not colon:
        module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise NetworkError("model.name", f"cannot import {path!r}: {err}") from None
    except Exception as err:  # the user's module failed while it ran
        raise NetworkError("model.name", f"cannot import {path!r}: {module_name} raised {_first_line(err)}") from err
    if not hasattr(module, attr):
        raise NetworkError("model.name", f"cannot import {path!r}: module {module_name!r} has no {attr!r}")
    found = getattr(module, attr)
    if isinstance(found, type) and not issubclass(found, nn.Module):
        raise NetworkError("model.name", f"{path!r} is a class but not a torch nn.Module")
    if not callable(found):
        raise NetworkError("model.name", f"{path!r} is a {type(found).__name__}, not a network class or a function "
                                         "building one")
    return found


def build_imported(path: str, feature_layer: Optional[str], kwargs: dict[str, Any]) -> RestorationNet:
    """The network ``path`` names built from ``kwargs``: a RestorationNet subclass as-is, anything else wrapped
    (``extra_in_channels``, the SPF prior channels, then goes to the wrapper)."""
    factory = locate(path)
    if isinstance(factory, type) and issubclass(factory, RestorationNet):
        if feature_layer is not None:
            raise NetworkError("model.feature_layer", f"{path} is a RestorationNet: its forward_train gives the "
                                                      "features (set model.feature_layer: null)")
        if _SPF_ARG not in _accepted(factory):
            raise NetworkError("model.name", f"{path} is a RestorationNet but takes no {_SPF_ARG} (IR2 reads SAM's "
                                             "priors through them)")
        return _construct(path, factory, kwargs)
    kwargs = dict(kwargs)
    extra = kwargs.pop(_SPF_ARG, 0)
    return PlainNet(_construct(path, factory, kwargs), feature_layer, extra, name=path)


def check_imported(path: str, feature_layer: Optional[str], kwargs: dict[str, Any]) -> None:
    """:func:`build_imported`'s checks, cheaply: built on the meta device (no weights allocated); a constructor
    that cannot run there is built for real, so only a real failure is reported."""
    try:
        with torch.device("meta"):
            build_imported(path, feature_layer, kwargs)
    except NetworkError:
        build_imported(path, feature_layer, kwargs)


def _accepted(factory: Callable) -> Optional[list[str]]:
    """The keyword arguments ``factory`` takes; None if it takes any (``**kwargs``) or shows no signature."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _construct(path: str, factory: Callable[..., nn.Module], kwargs: dict[str, Any]) -> nn.Module:
    key = f"model.args.{path}"
    accepted = _accepted(factory)
    unknown = [name for name in kwargs if accepted is not None and name not in accepted]
    if unknown:
        raise NetworkError(key, f"{path} has no argument {unknown[0]!r}; it takes {', '.join(accepted) or 'none'}")
    try:
        net = factory(**kwargs)
    except Exception as err:  # the user's constructor: any failure is reported in one line
        raise NetworkError(key, f"cannot build {path} from {kwargs}: {_first_line(err)}") from err
    if not isinstance(net, nn.Module):
        raise NetworkError("model.name", f"{path} returned a {type(net).__name__}, not a torch nn.Module")
    return net


def _first_line(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0]}" if str(err) else type(err).__name__
