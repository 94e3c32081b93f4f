"""Plant parameters: every physical figure the emulator uses, with its unit in the name.

Defaults follow the shared physics contract (docs/emulator.md, "Plant"). They are figures for a
research/education emulator, not clinical data.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field


@dataclass
class CsfParams:
    """CSF pressure at the catheter tip (intrathecal), gauge Pa.

    Lumbar CSF pressure lying down is ~10-15 cmH2O (1 cmH2O = 98.0665 Pa): 1300 Pa nominal.
    Pulsations are sines: cardiac (heart rate 0.8-2.0 Hz) and respiratory (0.15-0.5 Hz).
    """

    baseline_pa: float = 1300.0
    cardiac_amplitude_pa: float = 150.0
    cardiac_hz: float = 1.2
    respiratory_amplitude_pa: float = 100.0
    respiratory_hz: float = 0.25


@dataclass
class BatteryParams:
    """Primary cell and the board's charge budget (see docs/emulator.md, "Battery").

    Default cell: one lithium-thionyl-chloride AA-size primary cell (e.g. Saft LS14500 class),
    2.4 Ah usable, 3.6 V nominal with a flat discharge curve and a late knee.
    Charges are in microcoulombs (uC = uA*s); currents in microamps.
    """

    capacity_mah: float = 2400.0
    sleep_current_ua: float = 10.0  # implant-class target; a bare Pico in lightsleep draws ~1.3 mA
    stroke_current_ma: float = 60.0  # motor/solenoid pulse
    stroke_duration_ms: int = 50
    wake_current_ma: float = 20.0  # CPU awake (RP2040 at 125 MHz ~ 20-25 mA)
    wake_duration_ms: int = 5
    sample_charge_uc: float = 5.0  # one pressure sample: sensor + ADC powered ~1 ms at 5 mA
    # open-circuit voltage (mV) versus remaining charge (%), piecewise linear, descending percent
    curve: tuple[tuple[float, float], ...] = (
        (100.0, 3650.0),
        (50.0, 3600.0),
        (20.0, 3550.0),
        (10.0, 3450.0),
        (5.0, 3300.0),
        (2.0, 3100.0),
        (0.0, 2700.0),
    )


@dataclass
class PlantParams:
    """All plant figures. Pressures in Pa (gauge), volumes in nL, times in ms unless named _s."""

    stroke_nl: float = 250.0
    # mechanical accuracy: delivered = stroke_nl * (1 + bias) * (1 + N(0, jitter)) per stroke
    # (SynchroMed II clinical accuracy +1 %, Wesemann 2014)
    stroke_bias: float = 0.01
    stroke_jitter: float = 0.002
    reservoir_capacity_nl: float = 20_000_000.0
    reservoir_fill_nl: float = 18_000_000.0
    # catheter: compliance C (nL/Pa) and resistance R (Pa*s/nL): tau = R*C = 0.3 s nominal
    compliance_nl_per_pa: float = 1.0
    tau_s: float = 0.3
    # partial occlusion multiplies R (and tau) by this factor unless occlude() is given one
    partial_occlusion_factor: float = 10.0
    # leak/disconnection near the pump: effective R divided by this factor
    leak_factor: float = 20.0
    # the motor stalls (no feedback pulse) when the line pressure exceeds this (Pa)
    stall_pressure_pa: float = 150_000.0
    # dislodged tip: tissue (epidural/subcutaneous) pressure and remaining pulsation fraction
    tissue_pressure_pa: float = 300.0
    dislodged_pulsation_fraction: float = 0.1
    csf: CsfParams = field(default_factory=CsfParams)
    # pressure sensor: white noise sigma per sample, bounded random-walk drift
    noise_sigma_pa: float = 15.0
    drift_max_pa: float = 100.0
    drift_step_sigma_pa: float = 5.0  # random-walk step per drift knot
    drift_knot_ms: int = 60_000  # drift is interpolated linearly between knots
    # 12-bit ADC over [adc_min_pa, adc_max_pa]; adc_bits = 0 disables quantisation
    adc_bits: int = 12
    adc_min_pa: float = -5_000.0
    adc_max_pa: float = 35_000.0
    battery: BatteryParams = field(default_factory=BatteryParams)


# --- overrides (scenario files' [plant] table, campaign draws) ------------------------------------
#: every plant figure a scenario or a campaign may set, by dotted name, with its accepted range
#: (inclusive; physical sanity, not clinical plausibility). Battery figures are not here: a
#: scenario sets the charge with its `battery` action.
OVERRIDE_RANGES: dict[str, tuple[float, float]] = {
    "stroke_nl": (1.0, 10_000.0),
    "stroke_bias": (-0.5, 0.5),
    "stroke_jitter": (0.0, 0.5),
    "compliance_nl_per_pa": (0.01, 100.0),
    "tau_s": (0.001, 100.0),
    "partial_occlusion_factor": (1.01, 10_000.0),
    "leak_factor": (1.0, 10_000.0),
    "stall_pressure_pa": (1_000.0, 1_000_000.0),
    "tissue_pressure_pa": (-2_000.0, 10_000.0),
    "dislodged_pulsation_fraction": (0.0, 1.0),
    "csf.baseline_pa": (-2_000.0, 10_000.0),
    "csf.cardiac_amplitude_pa": (0.0, 5_000.0),
    "csf.cardiac_hz": (0.1, 5.0),
    "csf.respiratory_amplitude_pa": (0.0, 5_000.0),
    "csf.respiratory_hz": (0.01, 2.0),
    "noise_sigma_pa": (0.0, 1_000.0),
    "drift_max_pa": (0.0, 5_000.0),
    "drift_step_sigma_pa": (0.0, 1_000.0),
}


def override_problem(name: str, value: object) -> str | None:
    """Why ``value`` cannot set plant figure ``name`` (a dotted name), or None when it can."""
    rng = OVERRIDE_RANGES.get(name)
    if rng is None:
        return "unknown plant figure (one of: " + ", ".join(OVERRIDE_RANGES) + ")"
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not rng[0] <= value <= rng[1]:
        return f"must be a number between {rng[0]:g} and {rng[1]:g}"
    return None


def with_overrides(overrides: dict[str, float], base: PlantParams | None = None) -> PlantParams:
    """A new PlantParams: ``base`` (default: the defaults) with the dotted-name figures of
    ``overrides`` set (e.g. ``{"tau_s": 0.4, "csf.baseline_pa": 1200.0}``). Raises ValueError
    naming every figure that override_problem() rejects; ``base`` is not changed."""
    problems = [f"{name}: {why}" for name, value in overrides.items()
                if (why := override_problem(name, value)) is not None]
    if problems:
        raise ValueError("; ".join(problems))
    p = copy.deepcopy(base) if base is not None else PlantParams()
    for name, value in overrides.items():
        target: object = p
        *path, leaf = name.split(".")
        for part in path:
            target = getattr(target, part)
        setattr(target, leaf, float(value))
    return p
