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




# Costly fixtures computed once per module or session, and the group (by node id) of the tests that use each: a
# group runs on one worker, which computes its fixture once (on two workers, a module fixture is computed twice, and
# a session one built under a lock keeps the second worker waiting). pytest-xdist's own `--dist loadgroup` cannot
# do it under pytest 9.2 (it renames node ids through an attribute pytest no longer reads), hence the scheduler below.
SHARED = {"sam_experiments", "queued", "node", "team", "report"}
GROUPS = {"tests/test_pipeline.py::test_sam_size_table": "sam_experiments",
          "tests/test_pipeline.py::test_every_stage_": "sam_experiments", "tests/test_queue.py::": "queue",
          "tests/test_offline_install.py::": "offline", "tests/test_remotes.py::": "remotes",
          "tests/test_gpu_check.py::": "gpu_check"}
# The order the workers take work in (each takes the next test or group when nearly idle): the longest chains first
# (the shared builds, then what runs on them), the rest of the slow tier, then the fast tier's costliest modules
# (`--durations`), then the other tests in file order. Tests pass in any order; this one only ends sooner.
FIRST = ("test_pipeline.sam_experiments", "test_queue", "test_offline_install", "test_remotes.team", "test_pipeline",
         "test_multinode", "test_remotes", "test_gpu_check", "test_sam_torchrun", "test_benchmarks", "test_train",
         "test_tasks", "test_sam")


def group_of(nodeid: str) -> str | None:
    return next((group for prefix, group in GROUPS.items() if nodeid.startswith(prefix)), None)


def shared_fixture(item) -> str | None:
    info = getattr(item, "_fixtureinfo", None)
    for name in sorted(SHARED & set(getattr(item, "fixturenames", ()))):
        if info.name2fixturedefs[name][-1].scope != "function":
            return f"{item.module.__name__}.{name}"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """The slow tier first, each tier in :data:`FIRST`'s order (``--reverse``, pytest-reverse's option: all of it
    the other way round); every test of one costly shared fixture in one of :data:`GROUPS`."""
    def rank(item) -> tuple[bool, int]:
        names = (shared_fixture(item), getattr(item.module, "__name__", None))
        return item.get_closest_marker("slow") is None, next((i for i, n in enumerate(FIRST) if n in names), len(FIRST))

    groups: dict[str, set] = {}
    for item in items:
        if fixture := shared_fixture(item):
            groups.setdefault(fixture, set()).add(group_of(item.nodeid))
    split = {fixture: found for fixture, found in groups.items() if len(found) != 1 or None in found}
    if split:
        raise pytest.UsageError(f"tests/conftest.py GROUPS: the tests of each shared fixture in one group: {split}")
    items.sort(key=rank, reverse=config.getoption("reverse", False))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's default (`--dist load`: each worker takes the next test when nearly idle) with the tests of a
    group as one unit."""
    if config.getvalue("dist") != "load":
        return None  # a mode asked for on the command line
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or nodeid

    return GroupScheduling(config, log)
