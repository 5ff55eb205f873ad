"""What a configuration is called on every page: the params its experiments changed from their baseline commit
(besides the seeds), e.g. ``distill.sgr_weight=0.5`` — not every param a study touched, so labels stay short and a
lone experiment is still named by what it changed. Also the order pages list configurations in (prior sources by
the region information they carry) and the words for a prior source."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from sam4ir.errors import Sam4irError

SEED_PARAM = "train.seed"  # the ``seed`` column
SEED_PARAMS = (SEED_PARAM, "data.seed")  # repeats of one configuration: the seeds of training and of the data split
DEFAULTS = "defaults"  # the label of a configuration that changed nothing (when the study changed several params)
# sam.backend by the region information it carries: the order the mechanism's controls are read in
PRIOR_ORDER = ("none", "shuffled", "classical", "sam", "oracle")
PRIOR_WORDS = {"none": "no regions", "shuffled": "another image's segments",
               "classical": "the classical stand-in for SAM", "sam": "SAM's masks", "oracle": "exact segments"}
_BACKEND = re.compile(r"(?:^| )sam\.backend=(\S+)")


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists as their text, so values stay comparable and hashable."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return flat


def changed(params: Mapping[str, object], base: Mapping[str, object]) -> list[str]:
    """The params (not the seeds) whose value, as text, differs from ``base``'s (a param only one side has
    counts), in ``params``' order then ``base``'s."""
    keys = [*params, *(k for k in base if k not in params)]
    return [k for k in keys if k not in SEED_PARAMS and str(params.get(k)) != str(base.get(k))]


def config_labels(params: list[Mapping[str, object]],
                  bases: list[Mapping[str, object]]) -> tuple[list[str], list[str]]:
    """(one label per revision, the params any of them changed, first seen first). A label lists the changed
    params as ``key=value``; a revision that changed none is ``key=value`` of the study's one param, or
    :data:`DEFAULTS` when the study changed several (or none)."""
    diffs = [changed(p, b) for p, b in zip(params, bases)]
    keys = list(dict.fromkeys(k for d in diffs for k in d))
    labels = []
    for p, diff in zip(params, diffs):
        parts = [f"{k}={p.get(k)}" for k in keys if k in diff]
        labels.append(" ".join(parts) or (f"{keys[0]}={p.get(keys[0])}" if len(keys) == 1 else DEFAULTS))
    return labels, keys


def commit_params(commit: str) -> dict[str, object]:
    """The flattened params.yaml of a commit of this repository (``workspace``: the file on disk), the defaults an
    experiment's changes are named against; one-line error when git cannot show it."""
    if commit == "workspace":
        text = Path("params.yaml").read_text()
    else:
        done = subprocess.run(["git", "show", f"{commit}:params.yaml"], capture_output=True, text=True)
        if done.returncode != 0:
            raise Sam4irError(f"commit {commit}: no params.yaml in this repository's history ({done.stderr.strip()})")
        text = done.stdout
    return flatten(yaml.safe_load(text) or {})


def backend_of(config: str, default: str | None = None) -> str | None:
    """The prior source a configuration label names (``sam.backend=oracle``), else ``default``."""
    found = _BACKEND.search(config)
    return found.group(1) if found else default


def ordered(configs: Iterable[str], default_backend: str | None = None) -> list[str]:
    """The distinct configurations in reading order: by prior source, none -> shuffled -> classical -> sam ->
    oracle (a label without ``sam.backend`` has ``default_backend``), then alphabetically."""
    def key(config: str) -> tuple[int, str]:
        backend = backend_of(config, default_backend)
        return (PRIOR_ORDER.index(backend) if backend in PRIOR_ORDER else len(PRIOR_ORDER), config)
    return sorted(set(configs), key=key)


def describe(config: str) -> str:
    """A configuration in words where it is a prior source alone (``exact segments (`sam.backend=oracle`)``),
    else its label in code quotes."""
    backend = backend_of(config)
    if backend in PRIOR_WORDS and config == f"sam.backend={backend}":
        return f"{PRIOR_WORDS[backend]} (`{config}`)"
    return f"`{config}`"


def priors_phrase(backends: Iterable[str]) -> str:
    """``the classical stand-in for SAM (`sam.backend: classical`)``; several backends are each named."""
    names = list(dict.fromkeys(backends))
    return " and ".join(f"{PRIOR_WORDS.get(b, b)} (`sam.backend: {b}`)" for b in names)
