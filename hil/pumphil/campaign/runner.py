"""The client side of `itpump campaign run`: runs a campaign's missing runs on Dask distributed.

Each run is one task, :func:`pumphil.campaign.task.execute`, in a worker process (workers have one
thread each: a run is CPU-bound Python). The cluster is a ``LocalCluster`` on this machine
(``workers`` processes, default: one per core) or an existing one at ``scheduler``
(``tcp://HOST:8786``, started with ``dask scheduler`` / ``dask worker``, dask-jobqueue or
dask-kubernetes; docs/campaigns.md). Workers need the same itpump checkout (the emulator runs the
firmware from ``firmware/``); every row records the firmware digest its worker ran.

Results are kept as they finish (store.Store: statistics at once, rows flushed every
``flush_every`` runs or ``flush_s`` seconds). A rerun into the same directory skips the runs
that have a row. Ctrl-C (SIGINT) or SIGTERM cancels what is queued, writes what finished and
returns with ``interrupted`` set; a worker that dies on a run (KilledWorker after Dask's retries)
gives that run an error row. The campaign seed fixes every run, so the table is the same whatever
the number of workers or the order in which they finish.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import spec as _spec
from .store import Store
from .task import RunResult, _base_row, execute, firmware_identity

DEFAULT_FLUSH_EVERY = 16
DEFAULT_FLUSH_S = 10.0
POLL_S = 0.05          # how often the client looks for finished runs and for a stop request


@dataclass
class Outcome:
    total: int                    # runs in the campaign
    done_before: int              # runs that already had a row
    ran: int = 0                  # runs finished now (ok or not)
    failed: int = 0               # of those, status "error" or "refused"
    interrupted: bool = False
    complete: bool = False        # every run has a row (results.parquet written)
    wall_s: float = 0.0
    startup_s: float = 0.0        # of which: connecting to / starting the cluster
    task_wall_s: list[float] = field(default_factory=list)   # worker seconds per finished run
    cluster: str = ""


def failed_result(c: _spec.Campaign, run: int, message: str) -> RunResult:
    """The row of a run whose task did not come back (its worker died, or Dask failed)."""
    s = _spec.draw(c, run)
    row = _base_row(c, s)
    row["firmware"], row["firmware_digest"] = firmware_identity()
    row["status"], row["error"] = "error", message
    return RunResult(run, row, None, None, 0.0)


@contextmanager
def _client(workers: int | None, scheduler: str | None) -> Iterator[tuple[Any, str]]:
    """A distributed.Client on a new LocalCluster or on an existing scheduler."""
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler, timeout="30s")
        try:
            yield client, scheduler
        finally:
            client.close()
        return
    n = workers or os.cpu_count() or 1
    # the worker processes ignore SIGINT (inherited): a Ctrl-C at the terminal reaches the whole
    # process group, and only this client decides how the campaign stops
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    finally:
        signal.signal(signal.SIGINT, old)
    try:
        client = Client(cluster)
        try:
            yield client, f"LocalCluster, {n} worker process{'es' if n > 1 else ''}"
        finally:
            client.close()
    finally:
        cluster.close()


def run_campaign(c: _spec.Campaign, out: str | Path, *, workers: int | None = None,
                 scheduler: str | None = None, retry_failed: bool = False,
                 flush_every: int = DEFAULT_FLUSH_EVERY, flush_s: float = DEFAULT_FLUSH_S,
                 progress: bool | None = None,
                 say: Callable[[str], None] | None = None) -> Outcome:
    """Run every run of ``c`` that has no row in ``out`` yet; see the module docstring.
    ``progress``: a tqdm bar on stderr (None: only when stderr is a terminal). ``say``: where
    one-line messages go (None: stderr)."""
    from distributed import as_completed
    from tqdm import tqdm

    def _say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    say = say or _say
    t_start = time.perf_counter()
    store = Store(out, c).open()
    done = store.done(retry_failed)
    todo = [k for k in range(c.runs) if k not in done]
    res = Outcome(total=c.runs, done_before=len(done))
    if not todo:
        store.finish()
        res.complete = True
        return res
    show = sys.stderr.isatty() if progress is None else progress
    stop: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        stop.append(signum)       # acted upon between results (the loop polls): no write is cut

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    futures: dict[Any, int] = {}
    bar = None
    try:
        with _client(workers, scheduler) as (client, where):
            res.cluster = where
            res.startup_s = time.perf_counter() - t_start
            say(f"campaign {c.name!r}: {c.runs} runs, {len(done)} already in {out}, "
                f"{len(todo)} to run on {where}")
            bar = tqdm(total=c.runs, initial=len(done), unit="run", disable=not show,
                       file=sys.stderr, ncols=min(100, shutil.get_terminal_size().columns))
            cf = client.scatter(c, broadcast=True, hash=False)
            for k in todo:
                futures[client.submit(execute, cf, k, key=f"itpump-{c.digest[:8]}-run-{k}",
                                      pure=False)] = k
            last_flush = time.monotonic()
            ac = as_completed(list(futures))
            while futures and not stop:
                batch = ac.next_batch(block=False)
                if not batch:
                    time.sleep(POLL_S)
                for fut in batch:
                    k = futures.pop(fut)
                    try:
                        r = fut.result()
                    except Exception as e:  # noqa: BLE001 - the worker died, or Dask failed
                        r = failed_result(c, k, f"worker: {type(e).__name__}: {e}")
                    fut.release()
                    store.add(r)
                    res.ran += 1
                    res.task_wall_s.append(r.wall_s)
                    if r.row["status"] != "ok":
                        res.failed += 1
                    bar.update(1)
                if store.pending >= flush_every or time.monotonic() - last_flush >= flush_s:
                    store.flush()
                    last_flush = time.monotonic()
            if stop:
                res.interrupted = True
                client.cancel(list(futures))
            store.flush()
    finally:
        if bar is not None:
            bar.close()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    if stop:
        res.interrupted = True
    if not res.interrupted and res.done_before + res.ran == c.runs:
        store.finish()
        res.complete = True
    res.wall_s = time.perf_counter() - t_start
    return res
