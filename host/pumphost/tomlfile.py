"""Files people write (prescriptions, drug libraries): read as TOML, and the one error that names
the file and each problem as (field, reason)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import PumpError


class FileProblems(PumpError):
    """The file is unreadable or invalid; ``problems`` lists (field, reason)."""

    reason = "file"

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(f"{f}: {why}" for f, why in problems))


def read(path: str | Path, error: type[FileProblems]) -> dict[str, Any]:
    """The TOML document at path; an unreadable file or bad TOML raises ``error`` naming the
    file (field "file" or "toml")."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise error(str(p), [("file", e.strerror or str(e))]) from None
    except tomllib.TOMLDecodeError as e:
        raise error(str(p), [("toml", str(e))]) from None
