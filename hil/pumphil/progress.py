"""Progress of a long simulation for people at a terminal, and silence for logs.

:func:`day_progress` gives the runner's ``progress(day, days)`` callback: a tqdm bar on stderr
when stderr is a terminal, ``None`` (no output at all) otherwise, so CI logs and pipes never get
carriage-return counters. Who may call it: the CLI's simulate command and the demo.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

Progress = Callable[[int, int], None]


@contextmanager
def day_progress(days: int, label: str, stream: TextIO | None = None) -> Iterator[Progress | None]:
    out = stream if stream is not None else sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()):
        yield None
        return
    from tqdm import tqdm

    # one update per simulated day: at most a few hundred, each drawn at once
    with tqdm(total=days, unit="day", desc=label, file=out, leave=False, dynamic_ncols=True,
              mininterval=0, miniters=1) as bar:
        def step(day: int, total: int) -> None:
            bar.update(max(0, day - bar.n))

        yield step


__all__ = ["Progress", "day_progress"]
