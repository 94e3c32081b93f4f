"""The results directory of a campaign: what is done, written as it finishes, read back as one table.

Layout of DIR (docs/campaigns.md):
  campaign.json            the campaign's digest, name, run count and source file (a rerun into
                           the same DIR must be the same campaign: it resumes)
  campaign.toml            the campaign as it was run, self-contained (prescriptions inline)
  parts/part-NNNNNN.parquet  result rows, appended as runs finish (each file written to a temporary
                           name and renamed: a killed campaign leaves whole files only)
  results.parquet          all rows in run order, written when every run is done (the parts are
                           then removed)
  stats/strokes/run-NNNNNN.parquet, stats/windows/run-NNNNNN.parquet
                           the probe's per-stroke and per-window statistics of each run (written
                           before the run's row, so a row always has its statistics)
  report.html              `itpump campaign report DIR`

:func:`read_table` returns the rows in run order whatever the parts' order or number, with one
row per run (the last one written wins: a failed run retried with --retry-failed), so the table
of a campaign does not depend on how many workers ran it or in what order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import spec as _spec
from .task import RunResult, schema


class StoreError(ValueError):
    """DIR holds something else (another campaign's results, or unreadable files)."""

    reason = "campaign_dir"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Store:
    def __init__(self, directory: str | Path, campaign: _spec.Campaign) -> None:
        self.dir = Path(directory)
        self.c = campaign
        self.schema = schema(campaign)
        self.parts = self.dir / "parts"
        self.stats = self.dir / "stats"
        self._pending: list[dict[str, Any]] = []
        self._next_part = 0

    # --- opening ------------------------------------------------------------------------------
    def open(self) -> Store:
        """Create DIR, or check that it holds this same campaign (then the run resumes)."""
        meta_path = self.dir / "campaign.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError) as e:
                raise StoreError(f"{meta_path}: unreadable ({e})") from None
            if meta.get("digest") != self.c.digest:
                raise StoreError(
                    f"{self.dir} holds the results of another campaign "
                    f"({meta.get('name')!r}, {str(meta.get('digest'))[:12]}; this one is "
                    f"{self.c.name!r}, {self.c.digest[:12]}): choose another --out directory")
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            meta = {"name": self.c.name, "digest": self.c.digest, "runs": self.c.runs,
                    "seed": self.c.seed, "source": self.c.path}
            (self.dir / "campaign.toml").write_text(self.c.resolved_text())
            _atomic_write(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())
        self.parts.mkdir(exist_ok=True)
        (self.stats / "strokes").mkdir(parents=True, exist_ok=True)
        (self.stats / "windows").mkdir(parents=True, exist_ok=True)
        nums = [int(p.stem.split("-")[1]) for p in self.parts.glob("part-*.parquet")]
        self._next_part = max(nums, default=-1) + 1
        return self

    # --- what is done -------------------------------------------------------------------------
    def done(self, retry_failed: bool = False) -> set[int]:
        """Run numbers with a row (with retry_failed: only those whose status is "ok")."""
        t = read_table(self.dir, self.schema)
        if t is None:
            return set()
        if retry_failed:
            t = t.filter(pc.equal(t["status"], "ok"))
        return set(t["run"].to_pylist())

    # --- writing ------------------------------------------------------------------------------
    def add(self, r: RunResult) -> None:
        """Keep a finished run: its statistics now, its row at the next flush()."""
        for kind, data in (("strokes", r.strokes), ("windows", r.windows)):
            path = self.stats / kind / f"run-{r.run:06d}.parquet"
            if data is not None:
                _atomic_write(path, data)
            elif path.exists():
                path.unlink()
        self._pending.append(r.row)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Write the pending rows as one new part file."""
        if not self._pending:
            return
        table = pa.Table.from_pylist(self._pending, schema=self.schema)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        _atomic_write(self.parts / f"part-{self._next_part:06d}.parquet",
                      sink.getvalue().to_pybytes())
        self._next_part += 1
        self._pending = []

    def finish(self) -> pa.Table:
        """Every run has a row: write results.parquet in run order and drop the parts."""
        self.flush()
        t = read_table(self.dir, self.schema)
        assert t is not None
        sink = pa.BufferOutputStream()
        pq.write_table(t, sink, compression="zstd")
        _atomic_write(self.dir / "results.parquet", sink.getvalue().to_pybytes())
        for p in self.parts.glob("part-*.parquet"):
            p.unlink()
        return t


def read_table(directory: str | Path, expect: pa.Schema | None = None) -> pa.Table | None:
    """All result rows of DIR (results.parquet and any parts), one per run, in run order; None
    when there is none yet."""
    d = Path(directory)
    files = ([d / "results.parquet"] if (d / "results.parquet").exists() else []) \
        + sorted((d / "parts").glob("part-*.parquet"))
    if not files:
        return None
    tables = [pq.read_table(f) for f in files]
    sch = expect if expect is not None else tables[0].schema
    try:
        t = pa.concat_tables([tb.cast(sch) if tb.schema != sch else tb for tb in tables])
    except (pa.ArrowInvalid, ValueError) as e:
        raise StoreError(f"{d}: result files do not share one schema ({e})") from None
    # one row per run: the last written (files in write order, rows in file order)
    order = pa.array(range(t.num_rows))
    t = t.append_column("_order", order)
    last = t.group_by("run").aggregate([("_order", "max")])
    keep = pc.is_in(t["_order"], value_set=last["_order_max"])
    t = t.filter(keep).drop_columns(["_order"])
    return t.sort_by("run").replace_schema_metadata(sch.metadata)


def load_campaign(directory: str | Path) -> _spec.Campaign:
    """The campaign a results directory was run from (its saved campaign.toml)."""
    d = Path(directory)
    meta_path = d / "campaign.json"
    if not meta_path.exists():
        raise StoreError(f"{d}: not a campaign results directory (no campaign.json)")
    meta = json.loads(meta_path.read_text())
    c = _spec.load(d / "campaign.toml")
    if c.digest != meta.get("digest"):
        raise StoreError(f"{d}: campaign.toml is not the campaign that was run (edited?)")
    return c
