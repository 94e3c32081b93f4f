"""Prescription TOML -> rx dict: exact unit conversion and errors naming file and field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pumphost import prescription_file as pf

DATA = Path(__file__).parent / "data"

EXPECTED = {
    "reservoir": {"capacity_nl": 20000000, "fill_nl": 18000000, "low_alert_nl": 2000000,
                  "empty_nl": 500000},
    "catheter": {"volume_nl": 150000},
    "drugs": [{"name": "morphine", "conc_ug_per_ml": 10000, "hard_ng_per_day": None,
               "soft_ng_per_day": None}],
    "basal": {"steps": [[0, 20000], [480, 30000]], "days": None},
    "periodic": [{"times_min": [360, 1080], "volume_nl": 25000, "duration_ms": 600000}],
    "patient": {"volume_nl": 10000, "duration_ms": 120000, "lockout_ms": 3600000,
                "max_per_24h": 4},
}


def test_issue_example_converts_exactly() -> None:
    assert pf.load(DATA / "morphine.toml") == EXPECTED


def test_limits_days_and_decimals() -> None:
    doc = tomllib.loads((DATA / "morphine.toml").read_text())
    doc["drug"][0]["hard_limit_ug_per_day"] = 12000.5
    doc["drug"][0]["soft_limit_ug_per_day"] = 8000
    doc["basal"]["days"] = {"sat": [{"start": "00:00", "rate_ul_per_h": 0.125}]}
    doc["reservoir"]["empty_ml"] = 0.75
    del doc["patient_bolus"]
    del doc["periodic_bolus"]
    rx = pf.convert(doc, "x.toml")
    assert rx["drugs"][0]["hard_ng_per_day"] == 12000500
    assert rx["drugs"][0]["soft_ng_per_day"] == 8000000
    assert rx["basal"]["days"] == {"sat": [[0, 125]]}
    assert rx["reservoir"]["empty_nl"] == 750000
    assert rx["patient"] is None and rx["periodic"] == []


def test_errors_name_file_field_and_reason(tmp_path: Path) -> None:
    doc = tomllib.loads((DATA / "morphine.toml").read_text())
    doc["reservoir"]["fill_ml"] = 18.0000001        # below 1 nL resolution
    doc["catheter"]["volum_ul"] = 1                  # typo
    doc["basal"]["steps"][1]["start"] = "8:00"       # not HH:MM
    doc["drug"][0]["concentration_ug_per_ml"] = 1.5  # must be whole
    doc["patient_bolus"]["max_per_24h"] = "4"
    del doc["periodic_bolus"][0]["volume_ul"]
    with pytest.raises(pf.PrescriptionError) as ei:
        pf.convert(doc, "rx.toml")
    fields = [f for f, _ in ei.value.problems]
    assert set(fields) == {
        "reservoir.fill_ml", "catheter.volum_ul", "basal.steps[1].start",
        "drug[0].concentration_ug_per_ml", "periodic_bolus[0].volume_ul",
        "patient_bolus.max_per_24h"}
    msg = str(ei.value)
    assert msg.startswith("prescription: rx.toml: ") and "unknown key" in msg
    assert "missing" in msg and "HH:MM" in msg


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(pf.PrescriptionError) as ei:
        pf.load(tmp_path / "nope.toml")
    assert "nope.toml" in str(ei.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("[reservoir\n")
    with pytest.raises(pf.PrescriptionError) as ei:
        pf.load(bad)
    assert ei.value.problems[0][0] == "toml"
    missing = tmp_path / "missing.toml"
    missing.write_text("[reservoir]\ncapacity_ml = 20\n")
    with pytest.raises(pf.PrescriptionError) as ei:
        pf.load(missing)
    fields = {f for f, _ in ei.value.problems}
    assert {"catheter", "drug", "basal", "reservoir.fill_ml"} <= fields
