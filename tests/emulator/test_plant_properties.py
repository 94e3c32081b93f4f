"""Hypothesis properties of the plant: whatever the sequence of strokes, faults and time steps,
volume is conserved, outputs never run backwards and readings stay finite integers."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from plant_faults import CATHETER_FAULTS, inject
from pumphil.plant import Plant, PlantParams

ACTIONS = st.sampled_from(
    ["stroke", "stroke", "stroke", "partial", "complete", "clear", "dislodge", "reseat", "leak",
     "clear_leak", "stall", "unstall", "power_off", "power_on", "csf"]
)
STEPS = st.lists(st.tuples(ACTIONS, st.integers(min_value=0, max_value=20_000)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(steps=STEPS, seed=st.integers(min_value=0, max_value=2**32))
def test_conservation_and_monotone_outputs(steps: list[tuple[str, int]], seed: int) -> None:
    plant = Plant(seed, PlantParams(reservoir_fill_nl=5_000.0))
    fill = plant.reservoir_nl
    t = 0
    last_out = 0.0
    last_released = 0.0
    buf = [0] * 10
    for action, dt in steps:
        t += dt
        if action == "stroke":
            plant.stroke(t)
        elif action in CATHETER_FAULTS:
            inject(plant, action, t)
        elif action in ("stall", "unstall"):
            plant.motor_stall(action == "stall", t)
        elif action in ("power_off", "power_on"):
            plant.power(action == "power_on", t)
        else:
            plant.set_csf(t, baseline_pa=float(dt % 3000), cardiac_hz=0.8 + (dt % 12) / 10)
        plant.capture(t, 40, buf, 10)
        assert all(isinstance(x, int) and -5_000 <= x <= 35_000 for x in buf)
        out = plant.delivered_to_outlet_nl
        released = plant.released_after_occlusion_nl
        assert out >= last_out - 1e-6
        assert released >= last_released - 1e-6
        assert released <= out + 1e-6
        last_out, last_released = out, released
        total = plant.reservoir_nl + plant.delivered_to_outlet_nl + plant.leaked_nl + plant.stored_in_line_nl
        assert math.isclose(total, fill, rel_tol=1e-9)
        assert 0.0 <= plant.reservoir_nl <= fill
        assert 0.0 <= plant.battery_percent() <= 100.0
