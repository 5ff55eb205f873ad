"""SAM's semantic masks, computed once per image offline and cached as 16-bit label maps.

``SamSegmenter`` (the real SAM) and ``ClassicalSegmenter`` (weight-free superpixels for offline
demos) both map a list of RGB images to label maps; ``extract_masks`` runs either over a folder.
"""

from sam4ir.sam.checkpoints import SAM_CHECKPOINTS, ensure_checkpoint
from sam4ir.sam.classical import CLASSICAL_METHODS, ClassicalSegmenter
from sam4ir.sam.extract import extract_masks, label_map_path, segment_counts, select_shard
from sam4ir.sam.generator import AMP_DTYPES, GENERATOR_DEFAULTS, SamSegmenter, generator_kwargs
from sam4ir.sam.label_map import masks_to_label_map, segments_to_label_map
from sam4ir.sam.model import SAM_MODEL_TYPES, build_sam, load_sam, resolve_device, save_sam_with_config

__all__ = [
    "AMP_DTYPES", "CLASSICAL_METHODS", "GENERATOR_DEFAULTS", "SAM_CHECKPOINTS", "SAM_MODEL_TYPES",
    "ClassicalSegmenter", "SamSegmenter", "build_sam", "ensure_checkpoint", "extract_masks", "generator_kwargs",
    "label_map_path", "load_sam", "masks_to_label_map", "resolve_device", "save_sam_with_config",
    "segment_counts", "segments_to_label_map", "select_shard",
]
