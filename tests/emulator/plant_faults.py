"""The plant's catheter faults by name, for tests that script or generate fault sequences."""

from __future__ import annotations

from pumphil.plant import Plant

CATHETER_FAULTS = ("partial", "complete", "clear", "dislodge", "reseat", "leak", "clear_leak")


def inject(plant: Plant, fault: str, t_ms: int) -> None:
    """Apply one of CATHETER_FAULTS at t_ms (ValueError for any other name)."""
    if fault in ("partial", "complete"):
        plant.occlude(fault, t_ms=t_ms)
    elif fault == "clear":
        plant.clear_occlusion(t_ms)
    elif fault == "dislodge":
        plant.dislodge(t_ms)
    elif fault == "reseat":
        plant.reseat(t_ms)
    elif fault == "leak":
        plant.leak(t_ms)
    elif fault == "clear_leak":
        plant.clear_leak(t_ms)
    else:
        raise ValueError(f"not a catheter fault: {fault}")
