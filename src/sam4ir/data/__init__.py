"""Paired restoration data: the offline demos (photo crops and dead-leaves scenes), validation of paired folders, and the training dataset."""

from sam4ir.data.demo import DEMO_PHOTOS, TASKS, build_demo
from sam4ir.data.scenes import build_scenes
from sam4ir.data.paired import Pair, PairedDataset, scan_pairs, scan_splits
from sam4ir.data.transforms import PairedTransform, random_transform

# data.source: the offline scenes and photo crops, a paired folder on disk, the paper's benchmarks (sam4ir.datasets)
SOURCES = ("scenes", "demo", "folder", "download")

__all__ = ["DEMO_PHOTOS", "SOURCES", "TASKS", "Pair", "PairedDataset", "PairedTransform", "build_demo", "build_scenes",
           "random_transform", "scan_pairs", "scan_splits"]
