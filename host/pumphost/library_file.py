"""Drug library files (TOML, unit-suffixed keys, a source for every value) -> the library record
the pump enforces (pumpcore.library; docs/prescription.md "Library files").

::

    [library]
    name = "St Elsewhere pain clinic"
    version = "2026-03"
    [[drug]]
    name = "morphine"
    dose_unit = "mg"                       # people read mg/day and mg/mL
    concentration_min_ug_per_ml = 500
    concentration_max_ug_per_ml = 25000
    soft_limit_ug_per_day = 15000
    hard_limit_ug_per_day = 30000
    [drug.source]
    concentration_min_ug_per_ml = "Duramorph label: 0.5 mg/mL"
    ...

Conversions are exact (pumphost.units): ug -> ng (x 1000), hours -> ms. A key that is not known
(a typo), a value without its source, a string where a number belongs, or a value finer than
1 ng / 1 ms is an error naming the file and the field. Then the firmware's own validation
(pumpcore.library.validate_record) runs on the record, so a file that passes here is what the
pump accepts. The sources stay in the file: the pump enforces the numbers (their checksum is the
library's identity), the file says where each comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pumpcore import library as _library

from . import tomlfile, units
from .tomlfile import FileProblems

EXAMPLE = Path(__file__).resolve().parent / "data" / "library-example.toml"

# file key -> (record field, factor to the wire unit); required keys first
_VALUES: dict[str, tuple[str, int]] = {
    "concentration_min_ug_per_ml": ("conc_min_ug_per_ml", 1),
    "concentration_max_ug_per_ml": ("conc_max_ug_per_ml", 1),
    "soft_limit_ug_per_day": ("soft_ng_per_day", units.NG_PER_UG),
    "hard_limit_ug_per_day": ("hard_ng_per_day", units.NG_PER_UG),
    "max_bolus_ug": ("max_bolus_ng", units.NG_PER_UG),
    "step_ug_per_day": ("step_ng_per_day", units.NG_PER_UG),
    "step_percent": ("step_pct", 1),
    "step_interval_h": ("step_interval_ms", units.MS_PER_H),
    "start_max_ug_per_day": ("start_max_ng_per_day", units.NG_PER_UG),
}
_REQUIRED = ("concentration_min_ug_per_ml", "concentration_max_ug_per_ml",
             "soft_limit_ug_per_day", "hard_limit_ug_per_day")
#: record field -> file key (to name fields of the pump's own problems in file terms)
FILE_KEY = {rec: key for key, (rec, _) in _VALUES.items()}
FILE_KEY["dose_unit"] = "dose_unit"
FILE_KEY["name"] = "name"


class LibraryFileError(FileProblems):
    """The library file is unreadable or invalid; ``problems`` lists (field, reason)."""

    reason = "library_file"


@dataclass
class LibraryFile:
    """A library file read: the record the pump gets, and the sources per drug and file key."""

    path: str
    record: dict[str, Any]
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def checksum(self) -> str:
        return _library.record_checksum(self.record)


def convert(doc: dict[str, Any], path: str = "<library>") -> LibraryFile:
    """TOML document -> LibraryFile; raises LibraryFileError listing every problem."""
    problems: list[tuple[str, str]] = []

    def bad(f: str, why: str) -> None:
        problems.append((f, why))

    for k in doc:
        if k not in ("library", "drug"):
            bad(k, "unknown key (check the spelling)")
    head = doc.get("library")
    name = version = None
    if not isinstance(head, dict):
        bad("library", "missing: a [library] table with name and version")
    else:
        for k in head:
            if k not in ("name", "version"):
                bad(f"library.{k}", "unknown key (check the spelling)")
        name, version = head.get("name"), head.get("version")
        for k, v in (("name", name), ("version", version)):
            if not isinstance(v, str) or not v:
                bad(f"library.{k}", "must be a non-empty text")
    drugs_in = doc.get("drug", [])
    if not isinstance(drugs_in, list) or not drugs_in:
        bad("drug", "must be one or more [[drug]] tables")
        drugs_in = []
    rows: list[list[Any]] = []
    sources: dict[str, dict[str, str]] = {}
    for i, d in enumerate(drugs_in):
        where = f"drug[{i}]"
        if not isinstance(d, dict):
            bad(where, "must be a table")
            continue
        dname = d.get("name")
        if isinstance(dname, str):
            where = f"drug[{i}] ({dname})"
        for k in d:
            if k not in _VALUES and k not in ("name", "dose_unit", "source"):
                bad(f"{where}.{k}", "unknown key (check the spelling)")
        for k in ("name", "dose_unit", *_REQUIRED):
            if k not in d:
                bad(f"{where}.{k}", "missing")
        src = d.get("source", {})
        if not isinstance(src, dict):
            bad(f"{where}.source", "must be a table: one text per value")
            src = {}
        row: list[Any] = [dname]
        for key, (_rec, factor) in _VALUES.items():
            if key not in d:
                row.append(None)
                continue
            try:
                row.append(units.to_wire(d[key], factor))
            except units.UnitError as e:
                bad(f"{where}.{key}", str(e))
                row.append(None)
            if not isinstance(src.get(key), str) or not src[key].strip():
                bad(f"{where}.source.{key}", "missing: every value names where it comes from")
        for k in src:
            if k not in _VALUES:
                bad(f"{where}.source.{k}", "a source for a value the drug does not set")
        row.append(d.get("dose_unit"))
        rows.append(row)
        if isinstance(dname, str):
            sources[dname] = {k: v for k, v in src.items() if isinstance(v, str)}
    if problems:
        raise LibraryFileError(path, problems)
    record = {"name": name, "version": version, "fields": list(_library.FIELDS), "drugs": rows}
    # the firmware's own validation: what passes here is what the pump accepts
    fw_problems, lib = _library.validate_record(record)
    if fw_problems:
        raise LibraryFileError(path, [_file_problem(record, p) for p in fw_problems])
    assert lib is not None
    return LibraryFile(path, lib.record(), sources)


def _file_problem(record: dict[str, Any], p: list[Any]) -> tuple[str, str]:
    """A pumpcore.library problem in the file's terms: field and a reason with the numbers."""
    from .explain import library_problem  # one wording for the file and the pump's refusal
    return library_problem(p)


def load(path: str | Path) -> LibraryFile:
    return convert(tomlfile.read(path, LibraryFileError), str(Path(path)))


def example() -> LibraryFile:
    """The project's example library (EXAMPLES, not clinical guidance): what factory
    provisioning loads onto a pump and what offline checks use by default."""
    return load(EXAMPLE)
