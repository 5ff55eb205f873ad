"""Test-session setup: the same CPU code paths as every stage process (sam4ir.cpu_pins), set before any test module
imports torch, numpy or OpenCV, so in-process results equal the stages' own."""

from sam4ir.cpu_pins import pin_cpu

pin_cpu()

import pytest  # noqa: E402

from tiny_pipeline import built_once, copy_of, new_project, traced  # noqa: E402


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """The completed tiny pipeline (tests/tiny_pipeline.py), built once per session and shared read-only; its
    stage processes' traces are in ``../trace``. A test that changes anything works in :func:`project`."""
    base = built_once(tmp_path_factory, "workspace", lambda base: new_project(base / "repo", traced(base / "trace")))
    return base / "repo"


@pytest.fixture
def project(workspace, tmp_path):
    """This test's own copy of the completed workspace."""
    return copy_of(workspace, tmp_path / "repo")
