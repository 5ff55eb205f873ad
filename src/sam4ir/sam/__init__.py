"""SAM's semantic masks, computed once per image offline and cached as 16-bit label maps.

``SamSegmenter`` (the real SAM) and ``ClassicalSegmenter`` (weight-free superpixels for offline
demos) both map a list of RGB images to label maps; ``extract_masks`` runs either over a folder.

Names are imported on first use (PEP 562): a stage that only needs the params' names (``sam4ir.sam.names``) or a
label-map helper does not pay for importing segment-anything and torchvision.
"""

from __future__ import annotations

import importlib
from typing import Any

from sam4ir.sam.names import (BACKENDS, CLASSICAL_METHODS, CONTROL_BACKENDS, IMAGE_BACKENDS, SAM_AMP, SAM_MODEL_TYPES,
                              SOURCE_DIRS)

_LAZY = {
    "sam4ir.sam.checkpoints": ("SAM_CHECKPOINTS", "ensure_checkpoint"),
    "sam4ir.sam.classical": ("ClassicalSegmenter",),
    "sam4ir.sam.extract": ("extract_masks", "label_map_path", "segment_counts", "select_shard"),
    "sam4ir.sam.generator": ("AMP_DTYPES", "GENERATOR_DEFAULTS", "SamSegmenter", "generator_kwargs"),
    "sam4ir.sam.label_map": ("masks_to_label_map", "segments_to_label_map"),
    "sam4ir.sam.model": ("build_sam", "load_sam", "resolve_device", "save_sam_with_config"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["BACKENDS", "CLASSICAL_METHODS", "CONTROL_BACKENDS", "IMAGE_BACKENDS", "SAM_AMP", "SAM_MODEL_TYPES",
           "SOURCE_DIRS", *sorted(_MODULE_OF)]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value
