"""Campaigns on Dask distributed (issue 15): the same small campaign gives the same results table
on a LocalCluster with 2 workers, on a loopback cluster (`dask scheduler` and two `dask worker`
processes this test starts on 127.0.0.1, driven by `itpump campaign run --scheduler`), and when
the campaign is killed (SIGKILL), restarted, interrupted (SIGINT: exit 130, what finished kept)
and restarted again on 1 worker. Then the report of the results is written."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import campaign_helpers as H
import pyarrow as pa
import pytest
from pumphil.campaign import runner, spec, store

BIN = Path(sys.executable).parent
CLI = [str(BIN / "itpump"), "campaign", "run"]
N_RUNS = 8


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("campaign")


@pytest.fixture(scope="module")
def reference(work: Path) -> pa.Table:
    """The campaign on a LocalCluster with 2 worker processes (through the library API)."""
    c = spec.load(H.write_small(work))
    assert c.runs == N_RUNS
    out = runner.run_campaign(c, work / "local", workers=2, progress=False, say=lambda m: None)
    assert out.complete and not out.interrupted and out.ran == N_RUNS
    t = store.read_table(work / "local")
    assert t is not None
    return t


def test_local_cluster_table(reference: pa.Table, work: Path) -> None:
    rows = reference.to_pylist()
    assert [r["run"] for r in rows] == list(range(N_RUNS))
    assert {r["status"] for r in rows} == {"ok"}
    assert [r["fault_class"] for r in rows] == ["none"] * 2 + ["complete occlusion"] * 2 + \
        ["partial dislodgement"] * 2 + ["slow leak"] * 2
    assert len({r["firmware_digest"] for r in rows}) == 1
    occl = [r for r in rows if r["kind"] == "occlusion" and r["evaluable"]]
    assert occl and all(r["detected"] and r["tta_s"] < 600 for r in occl)
    assert (work / "local" / "results.parquet").exists() and not list(
        (work / "local" / "parts").iterdir())
    assert len(list((work / "local" / "stats" / "strokes").glob("run-*.parquet"))) == N_RUNS
    # a rerun has nothing to do
    again = runner.run_campaign(spec.load(work / "small-campaign.toml"), work / "local",
                                workers=1, progress=False, say=lambda m: None)
    assert again.complete and again.ran == 0 and again.done_before == N_RUNS


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture
def loopback_cluster(tmp_path: Path) -> Iterator[str]:
    """`dask scheduler` + two `dask worker` processes on 127.0.0.1 (one thread each, no nanny:
    each worker is one process)."""
    sched_file = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path))
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        for i in range(2):
            procs.append(subprocess.Popen(
                [str(BIN / "dask"), "worker", "--scheduler-file", str(sched_file),
                 "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}",
                 "--local-directory", str(tmp_path / f"w{i}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path))
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        yield address
    finally:
        _terminate(procs[1:])             # the workers first: they would wait for the scheduler
        _terminate(procs[:1])


def test_loopback_cluster_gives_the_same_table(reference: pa.Table, work: Path,
                                               loopback_cluster: str) -> None:
    out = work / "loopback"
    p = subprocess.run([*CLI, str(work / "small-campaign.toml"), "--out", str(out),
                        "--scheduler", loopback_cluster], capture_output=True, text=True,
                       timeout=240)
    assert p.returncode == 0, p.stderr
    assert f"to run on {loopback_cluster}" in p.stderr
    assert store.read_table(out).equals(reference)


def _parts(out: Path) -> int:
    return len(list((out / "parts").glob("part-*.parquet"))) if (out / "parts").exists() else 0


def _start(args: list[str]) -> subprocess.Popen[str]:
    # its own session: the kill below reaches the LocalCluster's worker processes too
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_parts(proc: subprocess.Popen[str], out: Path, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while _parts(out) < at_least:
        assert proc.poll() is None, f"the campaign ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "no results written"
        time.sleep(0.05)


def test_killed_interrupted_and_restarted_campaign_completes_with_the_same_table(
        reference: pa.Table, work: Path) -> None:
    out = work / "restarted"
    args = [*CLI, str(work / "small-campaign.toml"), "--out", str(out), "--workers", "1",
            "--flush-every", "1"]
    # 1. killed outright (SIGKILL to the whole process group) after two runs were written
    p = _start(args)
    try:
        _wait_parts(p, out, 2)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)
    kept = store.read_table(out)
    assert kept is not None and 2 <= kept.num_rows < N_RUNS
    assert kept.equals(reference.filter(pa.compute.is_in(reference["run"], kept["run"])))
    # 2. restarted, then interrupted like Ctrl-C once it has written one more run
    p = _start(args)
    try:
        _wait_parts(p, out, _parts(out) + 1)
        os.kill(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
    assert p.returncode == 130, err
    assert f"{kept.num_rows} already in" in err and "stopped:" in err
    n = int(re.search(rf"stopped: (\d+) of {N_RUNS} runs kept", err).group(1))
    assert kept.num_rows < n == store.read_table(out).num_rows
    # 3. restarted to the end: only the missing runs are run, and the table is the reference
    p = subprocess.run(args, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    assert f"{n} already in" in p.stderr and f"{N_RUNS - n} to run" in p.stderr
    assert store.read_table(out).equals(reference)
    assert (out / "results.parquet").exists()


def test_report_of_the_campaign(reference: pa.Table, work: Path) -> None:
    from pumphost import cli

    assert cli.main(["campaign", "report", str(work / "local")]) == 0
    html = (work / "local" / "report.html").read_text()
    for heading in ("Sensitivity and time to alarm", "False alarms", "ROC curves of the",
                    "Worst runs", "Drawn plant figures"):
        assert f"<h2>{heading}" in html
    assert "Wilson" in html and "false alarms / patient-year" in html
    assert f"itpump campaign scenario {work / 'local'} --run " in html
    assert "data:image/svg+xml;base64," in html and "input hash: sha256:" in html
