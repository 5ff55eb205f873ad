"""A team shares one project through real remotes: an SSH server (Debian's sshd, started here on 127.0.0.1 with a
throwaway key) and an S3 object store (moto's standalone server, as DVC's own S3 plugin tests use), through the
dvc-ssh and dvc-s3 plugins.

Clone A runs the pipeline on folder data (``dvc add data/real/denoise``) and an experiment in a temporary copy
(``dvc exp run --temp``), and pushes outputs, run-cache and experiment. Teammate B clones the git repository and
pulls: its ``dvc repro`` runs nothing, it sees A's experiment, and its own experiment with A's params is restored
from the run-cache instead of trained (all but ``report``, whose outputs are committed files, outside the cache).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teams_helpers import (DVC, FOLDER, TASK, clone, exp_table, free_port, git, metrics, ran_stages,
                           restored_stages, run, shared_project)

SSHD = Path("/usr/sbin/sshd")
EXP = ["-S", "distill.sgr_weight=0.5"]  # A's experiment "half"; B's "mine" has the same params

pytestmark = pytest.mark.slow


def serve(cmd: list[str], port: int, log: Path, what: str, seconds: float = 30) -> subprocess.Popen:
    """``cmd`` in the background, its output to ``log`` (a pipe nobody reads would fill and stall the server), once
    something accepts connections on 127.0.0.1:``port``; a server that exits first fails the test."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    stop(proc)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} in {seconds} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_sshd(root: Path) -> tuple[subprocess.Popen | None, dict]:
    """sshd on a free port of 127.0.0.1, its own config, host key and one authorised throwaway key (this user's);
    the dvc remote settings that reach a folder through it, or (None, {"skip": why})."""
    try:
        import dvc_ssh  # noqa: F401
    except ImportError:
        return None, {"skip": "dvc-ssh missing (requirements-test.txt, which requirements.txt installs)"}
    if not SSHD.is_file() or not shutil.which("ssh-keygen"):
        return None, {"skip": f"{SSHD} or ssh-keygen missing (Debian's openssh-server; .ci/run installs it)"}
    privsep = Path("/run/sshd")  # sshd refuses to start without its privilege-separation folder
    if not privsep.is_dir():
        if os.geteuid() != 0:
            return None, {"skip": f"{privsep} is missing and only root may create it (sshd needs it)"}
        privsep.mkdir(mode=0o755, parents=True)
    for key in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
    shutil.copy(root / "user_key.pub", root / "authorized_keys")
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\n")
    proc = serve([str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")], port, root / "sshd.log", "sshd")
    url = f"ssh://{getpass.getuser()}@127.0.0.1:{port}{root / 'remote'}"
    return proc, {"url": url, "shared": {}, "local": {"keyfile": str(root / "user_key")}}


def start_moto(root: Path) -> tuple[subprocess.Popen | None, dict]:
    """moto's S3 server on a free port of 127.0.0.1 with a bucket ``team``; the dvc remote settings for it."""
    try:
        import boto3
        import dvc_s3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as err:
        return None, {"skip": f"{err.name} missing (requirements-test.txt, which requirements.txt installs)"}
    port = free_port()
    proc = serve([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, root / "moto.log",
                 "moto's S3 server")
    endpoint, keys = f"http://127.0.0.1:{port}", {"access_key_id": "team", "secret_access_key": "secret"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=keys["access_key_id"],
                 aws_secret_access_key=keys["secret_access_key"]).create_bucket(Bucket="team")
    return proc, {"url": "s3://team/cache", "shared": {"endpointurl": endpoint}, "local": keys}


def configure(repo: Path, name: str, server: dict, *, default: bool = False) -> None:
    """A remote as a team sets one up: URL and endpoint in the committed .dvc/config, secrets in .dvc/config.local."""
    if f"'remote \"{name}\"'" not in (repo / ".dvc" / "config").read_text():  # B has A's committed config
        run(DVC + ["remote", "add", name, server["url"]], repo)
        for key, value in server["shared"].items():
            run(DVC + ["remote", "modify", name, key, value], repo)
    for key, value in server["local"].items():
        run(DVC + ["remote", "modify", "--local", name, key, value], repo)
    if default:
        run(DVC + ["remote", "default", "--local", name], repo)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    started = {kind: start(tmp_path_factory.mktemp(kind)) for kind, start in (("ssh", start_sshd), ("s3", start_moto))}
    yield {kind: settings for kind, (_, settings) in started.items()}
    for proc, _ in started.values():
        if proc is not None:
            stop(proc)


@pytest.fixture(scope="module")
def team(tmp_path_factory, servers) -> dict:
    """A's clone with every remote that started configured and committed (pushed to the team's bare git repository),
    then A's experiment run in a temporary copy of the workspace."""
    project = shared_project(tmp_path_factory)
    root = tmp_path_factory.mktemp("team")
    origin = root / "origin.git"
    git(root, "clone", "-q", "--bare", str(project), str(origin))
    a = clone(project, root / "a", origin=origin)
    for kind, server in servers.items():
        if "skip" not in server:
            configure(a, kind, server)
    git(a, "commit", "-qam", "team remotes")
    git(a, "push", "-q", "origin", "main")
    exp = run(DVC + ["exp", "run", "--temp", "-n", "half", *EXP], a)
    return {"project": project, "origin": origin, "a": a, "root": root, "exp": exp}


def test_a_temp_experiment_gets_the_folder_data(team):
    """`dvc exp run --temp` runs in a copy holding what git and DVC track: the folder data, tracked by `dvc add`,
    is there (prepare_data would stop otherwise), and only what the changed param reaches runs."""
    assert ran_stages(team["exp"]) == {"distill", "evaluate", "report"}, team["exp"]
    table = exp_table(team["a"])
    row = table.loc["half"]
    assert row["distill.sgr_weight"] == 0.5 and metrics(row)[f"{TASK}.spd_sgr.psnr"] > 0
    assert metrics(row) != metrics(table.loc["main"])  # its own results, not the commit's


def test_a_missing_folder_says_why_and_what_to_run(tmp_path, monkeypatch, capsys):
    import yaml

    from sam4ir.stages import prepare_data, run_stage
    from teams_helpers import team_params

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(team_params()))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["prepare_data", "--task", TASK])
    for tracked in (False, True):
        if tracked:
            (tmp_path / f"{FOLDER}.dvc").parent.mkdir(parents=True)
            (tmp_path / f"{FOLDER}.dvc").write_text("outs:\n- path: denoise\n")
        with pytest.raises(SystemExit):
            run_stage(prepare_data.main)
        line = capsys.readouterr().err.strip()
        assert len(line.splitlines()) == 1 and line.startswith(f"sam4ir: error: {FOLDER}: dataset folder not found")
        assert (f"run `dvc pull {FOLDER}.dvc`" if tracked else f"run `dvc add {FOLDER}`, commit {FOLDER}.dvc") in line


RUNS = ".dvc/cache/runs"


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=["ssh", "s3"])
def teammate(request, team, servers, tmp_path_factory) -> dict:
    """A pushes outputs, run-cache and experiment to one remote; B clones the git repository, sets the remote's
    secrets as a teammate would, and pulls outputs and run-cache."""
    kind, a = request.param, team["a"]
    if "skip" in servers[kind]:
        pytest.skip(servers[kind]["skip"])
    run(DVC + ["push", "-r", kind, "--run-cache"], a)
    run(DVC + ["exp", "push", "-r", kind, "--run-cache", "origin", "half"], a)
    b = tmp_path_factory.mktemp(f"b_{kind}") / "b"
    git(b.parent, "clone", "-q", str(team["origin"]), str(b))
    configure(b, kind, servers[kind], default=True)
    run(DVC + ["pull", "--run-cache"], b)
    # B as the pull left it, and its first `dvc repro`, before any test runs an experiment there (tests run in any
    # order: `python -m pytest --reverse`)
    pulled = {out: files(b / out) for out in PULLED}
    runs = files(team["a"] / RUNS)
    return {**team, "kind": kind, "b": b, "pulled": pulled, "a_runs": runs, "repro": run(DVC + ["repro"], b)}


PULLED = (FOLDER, "data/prepared", "data/masks", "data/runs/spd_sgr", "data/eval", RUNS)


def test_the_teammate_pulls_data_results_and_run_cache_and_repro_runs_nothing(teammate):
    project, pulled = teammate["project"], teammate["pulled"]
    assert pulled[FOLDER] == files(project / FOLDER) != {}  # the folder data travelled through the remote
    for out in ("data/prepared", "data/masks", "data/runs/spd_sgr", "data/eval"):
        assert pulled[out] == files(project / out), out
    # every run-cache entry of A (the pipeline's and the experiment's stages) is now B's
    assert pulled[RUNS] == teammate["a_runs"] != {}
    out = teammate["repro"]
    assert ran_stages(out) == set() and "up to date" in out, out


def test_the_teammate_s_experiment_with_a_s_params_is_restored_not_trained(teammate):
    """B has never run (or pulled) this experiment: `--pull` fetches the outputs the run-cache names."""
    out = run(DVC + ["exp", "run", "--pull", "-n", "mine", *EXP], teammate["b"])
    assert restored_stages(out) == {"distill", "evaluate"} and ran_stages(out) == {"report"}, out
    ours, theirs = exp_table(teammate["b"]).loc["mine"], exp_table(teammate["a"]).loc["half"]
    assert metrics(ours) == metrics(theirs)


def test_the_pushed_experiment_is_pulled_and_listed(teammate, servers, tmp_path):
    """Into a fresh clone of the team's repository, as B's: B's own experiment (the test above) must find B without
    A's experiment pulled, whichever of the two runs first."""
    kind, b = teammate["kind"], tmp_path / "b"
    git(tmp_path, "clone", "-q", str(teammate["origin"]), str(b))
    configure(b, kind, servers[kind], default=True)
    out = run(DVC + ["exp", "pull", "-r", kind, "origin", "half"], b)
    assert "Pulled experiment" in out, out
    ours, theirs = exp_table(b).loc["half"], exp_table(teammate["a"]).loc["half"]
    assert ours["distill.sgr_weight"] == 0.5 and metrics(ours) == metrics(theirs)
    table = run([sys.executable, "-m", "sam4ir", "exp-table"], b)
    assert "half" in table and "distill.sgr_weight=0.5" in table, table
