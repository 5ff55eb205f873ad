"""The paper's real benchmarks: a registry of their official archives, resumable verified downloads pinned in a
checked-in manifest, and extraction into the common paired layout (``prepare_data`` with ``data.source: download``).
"""

from sam4ir.datasets.fetch import fetch_archive
from sam4ir.datasets.prepare import SEPARATOR, clear, prepare_download
from sam4ir.datasets.registry import ARCHIVES, DATASETS, Archive, Dataset, FolderPairs, MatBlocks, Source

__all__ = ["ARCHIVES", "DATASETS", "SEPARATOR", "Archive", "Dataset", "FolderPairs", "MatBlocks", "Source", "clear",
           "fetch_archive", "prepare_download"]
