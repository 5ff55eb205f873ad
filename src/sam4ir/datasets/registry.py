"""The real benchmarks of the paper's three tasks: which archive holds each set, who distributes it, and where its
degraded/clean pairs lie inside.

Every archive lists its official distribution points, tried in order. Names in ``ARCHIVES`` are the file names
in the download cache; names in ``DATASETS`` are what ``params.yaml`` (``data.download.<task>``) refers to.
"""

from __future__ import annotations

from dataclasses import dataclass

DRIVE_URL = "https://drive.google.com/uc?export=download&id={id}"


@dataclass(frozen=True)
class Source:
    """One download address; ``google_drive`` links pass Drive's large-file confirmation page first."""

    url: str
    google_drive: bool = False


@dataclass(frozen=True)
class Archive:
    """A file to download, with its official sources (tried in order) and the page that documents them."""

    file: str
    sources: tuple[Source, ...]
    where: str


@dataclass(frozen=True)
class FolderPairs:
    """Pairs inside a zip/tar archive. ``input`` and ``target`` are regexes matched against the end of each member
    path (any leading folders are allowed), with the same named groups: equal groups make a pair, the groups
    joined by ``_`` name it. A group named ``ext`` (the file extension) counts only where two files differ by
    nothing else."""

    archive: str
    input: str
    target: str

    @property
    def archives(self) -> tuple[str, ...]:
        return (self.archive,)


@dataclass(frozen=True)
class MatBlocks:
    """Pairs stored as image blocks in two MATLAB files: variable ``*_key`` is N x K x H x W x 3 uint8, block
    (n, k) is pair ``<n+1:04d>_<k+1:02d>`` (the numbering of the SIDD benchmark scripts)."""

    input_file: str
    input_key: str
    target_file: str
    target_key: str

    @property
    def archives(self) -> tuple[str, ...]:
        return (self.input_file, self.target_file)


@dataclass(frozen=True)
class Dataset:
    """A benchmark set of one task and where its pairs lie."""

    task: str
    layout: FolderPairs | MatBlocks


def _drive(file_id: str) -> Source:
    return Source(DRIVE_URL.format(id=file_id), google_drive=True)


ARCHIVES: dict[str, Archive] = {a.file: a for a in [
    # The deraining collection of the field's tables (MPRNet, HINet, Restormer, NAFNet): the MPRNet authors' Google
    # Drive folders (github.com/swz30/MPRNet, Deraining/Datasets/README.md); the file IDs are those of
    # github.com/swz30/Restormer, Deraining/download_data.py.
    Archive("rain13k_train.zip", (_drive("14BidJeG4nSNuFNFDf99K-7eErCq4i47t"),),
            "the MPRNet/Restormer authors' Google Drive (train.zip of github.com/swz30/Restormer "
            "Deraining/download_data.py)"),
    Archive("rain13k_test.zip", (_drive("1P_-RAvltEoEhfT-9GrWRdpEi6NSswTs8"),),
            "the MPRNet/Restormer authors' Google Drive (test.zip of github.com/swz30/Restormer "
            "Deraining/download_data.py)"),
    # GoPro (Nah et al., CVPR 2017): both links are on the authors' page.
    Archive("GOPRO_Large.zip",
            (Source("https://huggingface.co/datasets/snah/GOPRO_Large/resolve/main/GOPRO_Large.zip"),
             _drive("1y4wvPdOG3mojpFCHTqLgriexhbjoWVkK")),
            "the GoPro authors' page https://seungjunnah.github.io/Datasets/gopro"),
    # HIDE (Shen et al., ICCV 2019), the second test set of GoPro-trained deblurring models in the field's tables:
    # the same authors' Drive (HIDE_test of github.com/swz30/Restormer Motion_Deblurring/download_data.py).
    Archive("hide_test.zip", (_drive("1XRomKYJF1H92g1EuD06pCQe4o6HlwB7A"),),
            "the MPRNet/Restormer authors' Google Drive (HIDE_test of github.com/swz30/Restormer "
            "Motion_Deblurring/download_data.py)"),
    # SIDD (Abdelhamed et al., CVPR 2018): the authors' server at York University, linked from their pages
    # https://abdokamel.github.io/sidd/ and https://www.eecs.yorku.ca/~kamel/sidd/dataset.php.
    Archive("SIDD_Medium_Srgb.zip", (Source("http://130.63.97.225/share/SIDD_Medium_Srgb.zip"),),
            "the SIDD authors' page https://abdokamel.github.io/sidd/ (SIDD-Medium, sRGB images only)"),
    Archive("ValidationNoisyBlocksSrgb.mat",
            (Source("http://130.63.97.225/share/SIDD_Blocks/ValidationNoisyBlocksSrgb.mat"),),
            "the SIDD authors' page https://abdokamel.github.io/sidd/ (SIDD Validation, noisy sRGB data)"),
    Archive("ValidationGtBlocksSrgb.mat",
            (Source("http://130.63.97.225/share/SIDD_Blocks/ValidationGtBlocksSrgb.mat"),),
            "the SIDD authors' page https://abdokamel.github.io/sidd/ (SIDD Validation, ground-truth sRGB data)"),
]}

_IMAGE = r"(?P<name>[^/]+)\.(?P<ext>png|jpe?g|bmp|tiff?)"


def _input_target(archive: str, folder: str) -> FolderPairs:
    """The MPRNet/Restormer convention: ``<folder>/input/<name>`` pairs with ``<folder>/target/<name>``."""
    return FolderPairs(archive, f"{folder}/input/{_IMAGE}", f"{folder}/target/{_IMAGE}")


def _gopro(split: str) -> FolderPairs:
    """``<split>/<sequence>/blur/<frame>.png`` with ``.../sharp/<frame>.png``. ``blur``, not ``blur_gamma``: the
    input of MPRNet's GoPro (github.com/swz30/MPRNet issue #75), which HINet, NAFNet and Restormer reuse."""
    frame = r"(?P<frame>[^/]+)\.(?P<ext>png)"
    return FolderPairs("GOPRO_Large.zip", f"{split}/(?P<seq>[^/]+)/blur/{frame}",
                       f"{split}/(?P<seq>[^/]+)/sharp/{frame}")


DATASETS: dict[str, Dataset] = {
    "rain13k": Dataset("derain", _input_target("rain13k_train.zip", "train/Rain13K")),
    "rain100h": Dataset("derain", _input_target("rain13k_test.zip", "test/Rain100H")),
    "rain100l": Dataset("derain", _input_target("rain13k_test.zip", "test/Rain100L")),
    "test100": Dataset("derain", _input_target("rain13k_test.zip", "test/Test100")),
    "test1200": Dataset("derain", _input_target("rain13k_test.zip", "test/Test1200")),
    "test2800": Dataset("derain", _input_target("rain13k_test.zip", "test/Test2800")),
    "gopro_train": Dataset("deblur", _gopro("train")),
    "gopro_test": Dataset("deblur", _gopro("test")),
    "hide": Dataset("deblur", _input_target("hide_test.zip", "test/HIDE")),
    # SIDD-Medium sRGB: Data/<scene>/<id>_NOISY_SRGB_<shot>.PNG with its <id>_GT_SRGB_<shot>.PNG (two shots a scene).
    "sidd_medium": Dataset("denoise", FolderPairs(
        "SIDD_Medium_Srgb.zip", r"Data/(?P<scene>[^/]+)/\d+_NOISY_SRGB_(?P<shot>\d+)\.(?P<ext>png)",
        r"Data/(?P<scene>[^/]+)/\d+_GT_SRGB_(?P<shot>\d+)\.(?P<ext>png)")),
    "sidd_val": Dataset("denoise", MatBlocks("ValidationNoisyBlocksSrgb.mat", "ValidationNoisyBlocksSrgb",
                                             "ValidationGtBlocksSrgb.mat", "ValidationGtBlocksSrgb")),
}
