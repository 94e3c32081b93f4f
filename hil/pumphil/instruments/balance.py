"""Virtual Mettler Toledo XPR205 analytical balance, MT-SICS level 0/1 subset over TCP.

Weighs what left the catheter tip (``Plant.delivered_to_outlet_nl``) collected in a vessel on the
pan: mass_g = container_g + delivered_nl * 1e-6 mL/nL * density_g_per_ml - evaporation.
Readability 0.01 mg (5 decimals in g), capacity 220 g. A reading is *stable* when no stroke happened
within the last ``settle_ms`` of plant time (the outflow after a stroke decays with tau ~0.3 s).

MT-SICS: commands are upper case, terminated by CR LF both ways. Supported: ``@`` (reset: clears
tare, stops SIR, answers ``I4 A "<SNR>"``), ``I0``-``I4``, ``S`` (``S S <w> g`` stable, ``S I`` when
no stable value is available, ``S +``/``S -`` over/underload), ``SI`` (``S S``/``S D``), ``SIR``
(repeat SI until the next command), ``Z`` (``Z A``), ``ZI`` (``ZI S``/``ZI D``), ``T``
(``T S <tare> g``), ``TA`` (``TA A <tare> g``), ``TAC`` (``TAC A``), ``TI``. Unknown command:
``ES``; a known command with wrong parameters: ``<cmd> L`` (``EL``/``ET`` are not produced: no
logical or transmission errors arise in the model); the weight field is 10 characters
right-aligned as in the MT-SICS reference manual.
"""

from __future__ import annotations

import random
import threading

from ..plant import Plant
from .server import Session

CAPACITY_G = 220.0
READABILITY_G = 0.00001


class VirtualBalance:
    write_termination = "\r\n"
    model = "XPR205"
    serial = "B123456789"

    def __init__(self, plant: Plant, seed: int = 0, container_g: float = 0.0,
                 density_g_per_ml: float = 1.0, evaporation_mg_per_h: float = 0.0,
                 noise_mg: float = 0.0, settle_ms: int = 2000) -> None:
        self.plant = plant
        self.container_g = container_g
        self.density_g_per_ml = density_g_per_ml
        self.evaporation_mg_per_h = evaporation_mg_per_h
        self.noise_mg = noise_mg
        self.settle_ms = settle_ms
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.zero_g = 0.0
        self.tare_g = 0.0

    # -- physics
    def gross_g(self) -> float:
        """Mass on the pan in g (before zero and tare). Evaporation (mg/h of plant time, from
        plant time 0) takes water from the vial: from the collected fluid and, once that is gone,
        from what ``container_g`` holds (a pre-wetted vial under an oil layer); never below 0."""
        p = self.plant
        evap_g = self.evaporation_mg_per_h * p.now_ms / 3_600_000.0 / 1000.0
        fluid_g = p.delivered_to_outlet_nl * 1e-6 * self.density_g_per_ml
        return max(0.0, self.container_g + fluid_g - evap_g)

    def stable(self) -> bool:
        last = self.plant.last_stroke_ms
        return last is None or self.plant.now_ms - last >= self.settle_ms

    def net_g(self) -> float:
        """Displayed net weight (quantised to the readability)."""
        g = self.gross_g() - self.zero_g - self.tare_g
        if self.noise_mg:
            g += self._rng.gauss(0.0, self.noise_mg / 1000.0)
        return round(g / READABILITY_G) * READABILITY_G

    @staticmethod
    def _w(g: float) -> str:
        return f"{g:10.5f} g"

    def _weight_reply(self, immediate: bool) -> str:
        gross = self.gross_g()
        if gross > CAPACITY_G:
            return "S +"
        if gross - self.zero_g < -CAPACITY_G * 0.02:
            return "S -"
        stable = self.stable()
        if not immediate and not stable:
            return "S I"
        return "S {} {}".format("S" if stable else "D", self._w(self.net_g()))

    # -- MT-SICS
    def handle_line(self, line: str, session: Session | None = None) -> list[str]:
        cmd = line.strip()
        parts = cmd.split()
        if not parts:
            return ["ES"]
        name, args = parts[0], parts[1:]
        with self._lock:
            if name == "@":
                self.tare_g = 0.0
                return [f'I4 A "{self.serial}"']
            handler = {
                "I0": self._i0, "I1": self._i1, "I2": self._i2, "I3": self._i3, "I4": self._i4,
                "S": self._s, "SI": self._si, "SIR": self._sir, "Z": self._z, "ZI": self._zi,
                "T": self._t, "TI": self._ti, "TA": self._ta, "TAC": self._tac,
            }.get(name)
            if handler is None:
                return ["ES"]
            if args and name != "TA":
                return [f"{name} L"]
            return handler(args, session)

    def _i0(self, a: list[str], s: Session | None) -> list[str]:
        cmds = ["@", "I0", "I1", "I2", "I3", "I4", "S", "SI", "SIR", "Z", "ZI", "T", "TA", "TAC",
                "TI"]
        level = {"@": 0, "S": 0, "SI": 0, "SIR": 0, "Z": 0, "I0": 0, "I1": 0, "I2": 0, "I3": 0,
                 "I4": 0}
        lines = [f'I0 B {level.get(c, 1)} "{c}"' for c in cmds]
        lines[-1] = lines[-1].replace("I0 B", "I0 A", 1)
        return lines

    def _i1(self, a: list[str], s: Session | None) -> list[str]:
        return ['I1 A "01" "2.00" "2.00" "1.00" "1.00"']

    def _i2(self, a: list[str], s: Session | None) -> list[str]:
        return [f'I2 A "{self.model} {CAPACITY_G:.5f} g"']

    def _i3(self, a: list[str], s: Session | None) -> list[str]:
        return ['I3 A "1.10.0.100"']

    def _i4(self, a: list[str], s: Session | None) -> list[str]:
        return [f'I4 A "{self.serial}"']

    def _s(self, a: list[str], s: Session | None) -> list[str]:
        return [self._weight_reply(immediate=False)]

    def _si(self, a: list[str], s: Session | None) -> list[str]:
        return [self._weight_reply(immediate=True)]

    def _sir(self, a: list[str], s: Session | None) -> list[str]:
        if s is None:
            return [self._weight_reply(immediate=True)]
        s.stream = lambda: self._weight_reply(immediate=True)
        return []

    def _z(self, a: list[str], s: Session | None) -> list[str]:
        if not self.stable():
            return ["Z I"]
        self.zero_g = self.gross_g()
        self.tare_g = 0.0
        return ["Z A"]

    def _zi(self, a: list[str], s: Session | None) -> list[str]:
        stable = self.stable()
        self.zero_g = self.gross_g()
        self.tare_g = 0.0
        return ["ZI %s" % ("S" if stable else "D")]

    def _t(self, a: list[str], s: Session | None) -> list[str]:
        if not self.stable():
            return ["T I"]
        self.tare_g = self.gross_g() - self.zero_g
        return [f"T S {self._w(self.tare_g)}"]

    def _ti(self, a: list[str], s: Session | None) -> list[str]:
        stable = self.stable()
        self.tare_g = self.gross_g() - self.zero_g
        return ["TI {} {}".format("S" if stable else "D", self._w(self.tare_g))]

    def _ta(self, a: list[str], s: Session | None) -> list[str]:
        if a:  # preset tare: TA <value> <unit>
            try:
                value = float(a[0])
            except ValueError:
                return ["TA L"]
            if len(a) > 1 and a[1] != "g":
                return ["TA L"]
            self.tare_g = value
        return [f"TA A {self._w(self.tare_g)}"]

    def _tac(self, a: list[str], s: Session | None) -> list[str]:
        self.tare_g = 0.0
        return ["TAC A"]
