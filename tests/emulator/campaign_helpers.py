"""A small campaign for the campaign tests: tens of short runs (a few simulated hours each)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RX = (ROOT / "docs" / "examples" / "rx-morphine.toml").as_posix()

SMALL = f"""
name = "test campaign"
seed = 11
duration = "3h"

[[program]]
name = "morphine"
prescription = "{RX}"

[plant.csf]
baseline_pa = {{ dist = "normal", mean = 1300, sd = 150, min = 900, max = 1800 }}
heart_rate_per_min = {{ dist = "uniform", min = 50, max = 120 }}
respiratory_rate_per_min = {{ dist = "uniform", min = 9, max = 30 }}

[plant]
tau_s = {{ dist = "lognormal", median = 0.3, gsd = 1.25, min = 0.15, max = 0.6 }}

[[fault]]
name = "none"
kind = "none"
runs = 2

[[fault]]
name = "complete occlusion"
kind = "occlusion"
runs = 2
onset = {{ dist = "uniform", min = "40min", max = "90min" }}
observe = "30min"

[[fault]]
name = "partial dislodgement"
kind = "dislodgement"
runs = 2
onset = {{ dist = "uniform", min = "40min", max = "90min" }}
observe = "30min"
[fault.plant]
tissue_pressure_pa = {{ dist = "uniform", min = 150, max = 900 }}

[[fault]]
name = "slow leak"
kind = "leak"
runs = 2
onset = {{ dist = "uniform", min = "40min", max = "90min" }}
observe = "30min"
[fault.plant]
leak_factor = {{ dist = "loguniform", min = 2, max = 40 }}
"""


def write_small(directory: Path) -> Path:
    p = directory / "small-campaign.toml"
    p.write_text(SMALL)
    return p
