"""The plant: pump mechanics, reservoir, catheter line, CSF pressure, sensor, battery and faults.

Event-driven and analytic (see docs/emulator.md, "Plant"): the state is a *segment* that starts at
the last event time ``t0`` (stroke, fault change, CSF setting change) and is evaluated in closed form
at any query time ``t >= t0``; nothing is stepped per millisecond.

Time contract: plant time ``t_ms`` is an int of virtual milliseconds since plant creation (it does
NOT wrap; the virtual board converts its wrapping tick clock). Events (``stroke``, faults, settings,
``advance_to``, ``wake``) must come in non-decreasing time order; queries (``pressure_pa``,
``capture``) may be made at any ``t >= t0`` (the start of the current segment: the last event other
than a wake-up, which does not start a segment) in any order, so a board can read the samples before
a stroke and the stroke-response samples after it. Thread-safe: every public method takes one lock,
so the virtual instruments can read the plant while the board drives it. The parameters are read at
construction (do not change ``params`` afterwards).

Determinism: everything random comes from ``random.Random`` streams derived from ``seed``; the same
seed and the same sequence of calls give the same numbers.

Speed (a month calls ``capture`` ~10^5 times, ``wake`` ~4*10^5 times): a capture works in ADC-code
units with a pre-scaled noise table, and reads the two CSF tones from a table of their sum over one
common period in integer ms (built per plant once a tone setting has served a few thousand samples,
when the frequencies repeat within a minute at integer ms); each sample is then one float
expression, int() and a table look-up. Captures the fast path cannot take (no tone table, a drift
knot inside the capture, readings that may clip at the ADC rails, no quantisation) take the general
per-sample path, which evaluates the same closed form (the same readings, tested).
"""

from __future__ import annotations

import cmath
import itertools
import math
import random
import threading
from array import array
from collections.abc import Callable, MutableSequence
from fractions import Fraction
from operator import add
from typing import Final

from .params import PlantParams

# Final: the compiled build (pumphil/accel.py) inlines these instead of a module-dict look-up
INF: Final = math.inf
_exp: Final = math.exp
# True when this module runs as the mypyc build (pumphil/accel.py): capture() then takes the
# indexed loop that compiles well instead of the slice-and-map loop that interprets well
_COMPILED: Final = not __file__.endswith(".py")
_TWO_PI: Final = 2.0 * math.pi
_NOISE_TABLE_BITS: Final = 14
_NOISE_TABLE_SIZE: Final = 1 << _NOISE_TABLE_BITS
_NOISE_MASK: Final = _NOISE_TABLE_SIZE - 1
_NOISE_STRIDE_BITS: Final = 3  # a capture walks the noise table with an odd stride 1, 3, .., 15
_NOISE_DRAW_BITS: Final = _NOISE_TABLE_BITS + _NOISE_STRIDE_BITS
_NOISE_EXT: Final = 15 * 256  # the table is extended so that windows of <= 257 samples are one slice
_NOISE_LEN: Final = _NOISE_TABLE_SIZE + _NOISE_EXT
_TONE_MAX_PERIOD_MS: Final = 60_000  # longest common period of the two tones that gets a table
_TONE_EXT_MS: Final = 8_192  # the tone table runs this far past its period (captures span <= 8.2 s)
_TONE_TABLES_KEPT: Final = 4  # per plant, the newest
_NEGLIGIBLE_CODES: Final = 1e-12  # a line/baseline transient below this (ADC codes) is left out

SEVERITIES = ("partial", "complete")


def lowpass_gain(freq_hz: float, tau_s: float) -> float:
    """Amplitude gain of a first-order low-pass (time constant tau_s) for a sine of freq_hz."""
    if tau_s == INF:
        return 0.0
    w_tau = _TWO_PI * freq_hz * tau_s
    return 1.0 / math.sqrt(1.0 + w_tau * w_tau)


def lowpass_lag_rad(freq_hz: float, tau_s: float) -> float:
    """Phase lag (radians) of the same first-order low-pass."""
    if tau_s == INF:
        return math.pi / 2.0
    return math.atan(_TWO_PI * freq_hz * tau_s)


def tone_period_ms(freq_hz: float) -> int:
    """Smallest whole number of ms after which a sine of freq_hz repeats exactly at integer ms
    (0 when freq_hz is not, to float precision, a ratio with a period of at most a minute)."""
    f = abs(freq_hz)
    r = Fraction(f).limit_denominator(1_000_000)
    if abs(float(r) - f) > 4e-16 * f:
        return 0
    period = (r / 1000).denominator
    return period if period <= _TONE_MAX_PERIOD_MS else 0


def _tone_table(amp_c: float, w_c: float, lag_c: float, p_c: int,
                amp_r: float, w_r: float, lag_r: float, p_r: int, length: int) -> list[float]:
    """[amp_c*sin(w_c*t - lag_c) + amp_r*sin(w_r*t - lag_r) for t in range(length)], each tone
    evaluated over its own period and repeated (exactly periodic at integer ms)."""
    sin = math.sin
    one_c = [amp_c * sin(w_c * t - lag_c) for t in range(p_c)]
    one_r = [amp_r * sin(w_r * t - lag_r) for t in range(p_r)]
    return list(itertools.islice(map(add, itertools.cycle(one_c), itertools.cycle(one_r)), length))


class Plant:
    """Physics of one pump + catheter + patient (or bench phantom).

    Measured outputs (all at the plant's current time ``now_ms``):
      ``delivered_to_outlet_nl``  fluid that left the catheter tip (the balance weighs this)
      ``leaked_nl``               fluid lost through a leak/disconnection near the pump
      ``released_after_occlusion_nl``  fluid released by the pressurised line after occlusions
                                  were cleared (cumulative: the occlusion test's unintended bolus)
      ``reservoir_nl``            fluid left in the reservoir
    """

    def __init__(self, seed: int = 0, params: PlantParams | None = None,
                 tone_table: bool = True) -> None:
        """tone_table: True, captures read the two tones from a table of their sum once a setting
        is in use (the fast path); False, every capture computes them (the general path). Both
        give the same readings to within float rounding (tests compare them)."""
        self.params = params if params is not None else PlantParams()
        p = self.params
        self._use_tone_table = tone_table
        self._lock = threading.RLock()
        master = random.Random(seed)
        self._rng_stroke = random.Random(master.getrandbits(64))
        self._stroke_gauss_next: float | None = None   # see _stroke_gauss
        self._rng_noise = random.Random(master.getrandbits(64))
        self._rng_drift = random.Random(master.getrandbits(64))
        gauss = self._rng_noise.gauss
        unit_noise = [gauss(0.0, 1.0) for _ in range(_NOISE_TABLE_SIZE)]
        self._drift_knots: list[float] = [0.0]
        self._knot_ms = p.drift_knot_ms
        # drift piece cached for capture: knot index and time, value there, slope per ms (code units)
        self._drift_i = -1
        self._drift_t = 0
        self._drift_v = 0.0
        self._drift_slope = 0.0
        self._drift_reach = 0.0
        # sensor: captures work in ADC-code units x = (pressure - adc_min_pa) * k, code = int(x)
        self._bits = p.adc_bits
        if p.adc_bits:
            count = 1 << p.adc_bits
            lsb = (p.adc_max_pa - p.adc_min_pa) / count
            self._k = count / (p.adc_max_pa - p.adc_min_pa)
            self._lo = p.adc_min_pa
            # integer Pa reported for each ADC code (the code's centre)
            self._levels = [round(p.adc_min_pa + (c + 0.5) * lsb) for c in range(count)]
        else:  # no quantisation: the units are Pa and a reading is round(x)
            self._k = 1.0
            self._lo = 0.0
            self._levels = []
        self._top = len(self._levels) - 1
        scale = p.noise_sigma_pa * self._k
        noise = [scale * g for g in unit_noise]  # noise in code units, sigma folded in
        self._noise = noise + noise[:_NOISE_EXT]
        self._noise_max = max(map(abs, noise))
        self.now_ms = 0
        # mechanics
        self.reservoir_nl = float(p.reservoir_fill_nl)
        self.stroked_nl = 0.0  # total volume the mechanism moved into the line
        self.strokes_ok = 0
        self.strokes_failed = 0
        self.last_stroke_ms: int | None = None
        # faults
        self.occlusion: str | None = None  # None | "partial" | "complete"
        self.occlusion_factor = p.partial_occlusion_factor
        self.dislodged = False
        self.leaking = False
        self.stalled = False
        self.powered = True
        self.external_supply_mv: float | None = None
        self._power_listeners: list[Callable[[bool], None]] = []
        # csf (bench phantom or patient)
        c = p.csf
        self.csf_baseline_pa = c.baseline_pa
        self.cardiac_amplitude_pa = c.cardiac_amplitude_pa
        self.cardiac_hz = c.cardiac_hz
        self.respiratory_amplitude_pa = c.respiratory_amplitude_pa
        self.respiratory_hz = c.respiratory_hz
        # segment state at t0
        self._t0 = 0
        self._pline0 = 0.0  # line over-pressure from strokes (Pa), decays with tau
        self._base0 = c.baseline_pa  # baseline seen at the sensor (Pa), follows its target with tau
        self._pending0 = 0.0  # nL still stored in the line from before an occlusion was cleared
        self._out_tip_nl = 0.0
        self._out_leak_nl = 0.0
        self._released_nl = 0.0
        # drug truth (pumphil/plant/drugs.py): the tip-output curve, (t_ms, cumulative nL out of
        # the tip) at every settle that moved fluid, and the reservoir's admixture history as
        # (cumulative nL stroked when it was filled, {drug: ug/mL})
        self._tip_t = array("q")
        self._tip_cum = array("d")
        self._admixtures: list[tuple[float, dict[str, float]]] = []
        # battery
        b = p.battery
        self._capacity_uc = b.capacity_mah * 3.6e6
        self._used_uc = 0.0
        self._drain_since_ms: int | None = 0  # powered from the battery since (None: not drawing)
        self._drawing = True  # powered from the cell: charges are booked (powered, no bench supply)
        self._wake_uc = b.wake_current_ma * b.wake_duration_ms
        self._stroke_uc = b.stroke_current_ma * b.stroke_duration_ms
        self._sample_uc = b.sample_charge_uc
        self._stroke_vol = p.stroke_nl * (1.0 + p.stroke_bias)
        self._jitter = p.stroke_jitter
        self._compliance = p.compliance_nl_per_pa
        self.last_wake_ms: int | None = None
        self.samples_taken = 0
        self.general_captures = 0      # captures that took the general (per-sample) path
        # a tone table is built once the general path has taken this many samples per table entry
        # with the current tone setting (building costs about what the general path loses over
        # a quarter as many samples): rare settings never pay for a table
        self._table_payback = 0.25
        self._tone_key: tuple[float, ...] = ()
        self._tones: list[float] | None = None
        # per plant, not shared: which captures take the table depends only on this plant's calls
        self._tone_tables: dict[tuple[float, ...], list[float]] = {}
        # the tone table in rows by sample period (compiled fast path): row r holds the entries
        # r, r + period, r + 2 * period, ... as floats of their own, next to each other in
        # memory, so a capture reads consecutive entries of one row instead of one entry per
        # period_ms of the table (the tables are larger than the CPU's caches: a month spent
        # ~40 % of capture() waiting for those reads). The same floats: the same readings.
        self._rows_of: list[float] | None = None     # the table the rows were made from
        self._rows_period = 0
        self._rows: list[list[float]] = []
        # the noise table likewise in rows by stride (made at a stride's first use):
        # _noise_rows[stride][r] = entries r, r + stride, ... of self._noise
        self._noise_rows: list[list[list[float]] | None] = [None] * (2 << _NOISE_STRIDE_BITS)
        self._slow_samples = 0
        self._recompute()

    # ----------------------------------------------------------------- derived segment figures
    def _recompute(self) -> None:
        """Recompute the figures that are constant within a segment from the fault/CSF state."""
        p = self.params
        if self.leaking:
            tau_s = p.tau_s / p.leak_factor
            self._frac_tip = 0.0
            base_target = 0.0
            amp_c = amp_r = 0.0
        else:
            self._frac_tip = 1.0
            if self.occlusion == "complete":
                tau_s = INF
            elif self.occlusion == "partial":
                tau_s = p.tau_s * self.occlusion_factor
            else:
                tau_s = p.tau_s
            if self.dislodged:
                base_target = p.tissue_pressure_pa
                amp_c = self.cardiac_amplitude_pa * p.dislodged_pulsation_fraction
                amp_r = self.respiratory_amplitude_pa * p.dislodged_pulsation_fraction
            else:
                base_target = self.csf_baseline_pa
                amp_c = self.cardiac_amplitude_pa
                amp_r = self.respiratory_amplitude_pa
        self.tau_s = tau_s
        self._tau_ms = tau_s * 1000.0
        self._base_target = base_target
        self._w_c = _TWO_PI * self.cardiac_hz / 1000.0  # rad per ms
        self._w_r = _TWO_PI * self.respiratory_hz / 1000.0
        self._amp_c = amp_c * lowpass_gain(self.cardiac_hz, tau_s)
        self._amp_r = amp_r * lowpass_gain(self.respiratory_hz, tau_s)
        self._lag_c = lowpass_lag_rad(self.cardiac_hz, tau_s)
        self._lag_r = lowpass_lag_rad(self.respiratory_hz, tau_s)
        # the tones in code units, read from a table of their sum when they have a short period
        k = self._k
        self._c0 = (base_target - self._lo) * k  # the baseline target in code units
        # how far the tones and the noise can take a reading from its mean (code units)
        self._reach = (abs(self._amp_c) + abs(self._amp_r)) * k + self._noise_max
        p_c = tone_period_ms(self.cardiac_hz) if self._amp_c else 1
        p_r = tone_period_ms(self.respiratory_hz) if self._amp_r else 1
        self._p_c = p_c  # each tone's own period (0: none in reach), to reduce its phase
        self._p_r = p_r
        period = math.lcm(p_c, p_r)
        # (no table without quantisation: that case takes the general path)
        self._tone_p = period if (self._use_tone_table and self._bits
                                  and 0 < period <= _TONE_MAX_PERIOD_MS) else 0
        key = (self._amp_c * k, self._w_c, self._lag_c, float(p_c),
               self._amp_r * k, self._w_r, self._lag_r, float(p_r))
        if key != self._tone_key:
            self._tone_key = key
            self._tones = self._tone_tables.get(key) if self._tone_p else None
            self._slow_samples = 0  # samples taken through the general path with this setting

    def _decay(self, dt_ms: float) -> float:
        return math.exp(-dt_ms / self._tau_ms)  # tau = inf: exp(-0.0) = 1.0

    def _check_time(self, t_ms: int) -> None:
        if t_ms < self._t0:
            raise ValueError(f"plant time {t_ms} ms is before the last event at {self._t0} ms")

    def _too_early(self, t_ms: int) -> ValueError:
        return ValueError(f"plant time {t_ms} ms is before the last event at {self.now_ms} ms")

    def _settle(self, t_ms: int) -> None:
        """Close the current segment at t_ms (>= now_ms >= t0) and start a new one there."""
        if t_ms < self.now_ms:
            raise self._too_early(t_ms)
        self.now_ms = t_ms
        t0 = self._t0
        if t_ms == t0:
            return
        d = math.exp((t0 - t_ms) / self._tau_ms)
        pline0 = self._pline0
        pline = pline0 * d
        out_nl = (pline0 - pline) * self._compliance
        frac_tip = self._frac_tip
        self._out_tip_nl += out_nl * frac_tip
        self._out_leak_nl += out_nl * (1.0 - frac_tip)
        if out_nl > 0.0 and frac_tip > 0.0:
            self._tip_t.append(t_ms)
            self._tip_cum.append(self._out_tip_nl)
        pending0 = self._pending0
        if pending0:
            pending = pending0 * d
            self._released_nl += (pending0 - pending) * frac_tip
            self._pending0 = pending
        bt = self._base_target
        self._base0 = bt + (self._base0 - bt) * d
        self._pline0 = pline
        self._t0 = t_ms

    def _change(self, t_ms: int | None, apply: Callable[[], None]) -> None:
        with self._lock:
            t = self.now_ms if t_ms is None else t_ms
            self._settle(t)
            apply()
            self._recompute()

    # ----------------------------------------------------------------- time
    def advance_to(self, t_ms: int) -> None:
        """Move plant time to t_ms (>= last event). Settles the line; cheap; optional between events."""
        with self._lock:
            self._settle(t_ms)

    # ----------------------------------------------------------------- mechanics
    def stroke(self, t_ms: int) -> bool:
        """One commanded pump stroke at t_ms. Returns the motor feedback pulse: False when the
        motor is stalled (injected, or line pressure above stall_pressure_pa) or unpowered.
        Moves stroke_nl*(1+bias)*(1+jitter) from the reservoir into the line (less, down to 0,
        when the reservoir runs empty: the mechanism still turns and reports its pulse)."""
        with self._lock:
            self._settle(t_ms)
            if not self.powered or self.stalled or self._pline0 >= self.params.stall_pressure_pa:
                self.strokes_failed += 1
                return False
            if self._drawing:
                self._used_uc += self._stroke_uc
            self.last_stroke_ms = t_ms
            vol = self._stroke_vol
            jitter = self._jitter
            if jitter:
                vol *= 1.0 + self._stroke_gauss() * jitter
            left = self.reservoir_nl
            if vol > left:
                vol = left
            if vol < 0.0:
                vol = 0.0
            self.reservoir_nl = left - vol
            self.stroked_nl += vol
            self._pline0 += vol / self._compliance
            self.strokes_ok += 1
            return True

    def _stroke_gauss(self) -> float:
        """A standard normal draw from the stroke generator: random.Random.gauss's algorithm
        (Box-Muller, the second value of each pair kept for the next call), written here so the
        compiled plant runs it without a Python-level call; the same numbers (tested)."""
        z = self._stroke_gauss_next
        if z is not None:
            self._stroke_gauss_next = None
            return z
        rnd = self._rng_stroke.random
        x2pi = rnd() * _TWO_PI
        g2rad = math.sqrt(-2.0 * math.log(1.0 - rnd()))
        self._stroke_gauss_next = math.sin(x2pi) * g2rad
        return math.cos(x2pi) * g2rad

    def refill(self, fill_nl: float, t_ms: int | None = None,
               admixture: dict[str, float] | None = None) -> None:
        """Set the reservoir content (a refill empties the old drug and fills to fill_nl).
        admixture: {drug: ug/mL} of the new fill (None: the same drug as before)."""
        if fill_nl < 0 or fill_nl > self.params.reservoir_capacity_nl:
            raise ValueError("fill_nl out of range")
        self._change(t_ms, lambda: setattr(self, "reservoir_nl", float(fill_nl)))
        if admixture is not None:
            with self._lock:
                self._admixtures.append((self.stroked_nl, dict(admixture)))

    def drug_record(self) -> tuple[array[int], array[float], list[tuple[float, dict[str, float]]]]:
        """(tip times ms, cumulative nL out of the tip, admixture history): the inputs of
        pumphil.plant.drugs (copies)."""
        with self._lock:
            return array("q", self._tip_t), array("d", self._tip_cum), list(self._admixtures)

    def wake(self, t_ms: int, from_cell: bool = True) -> None:
        """The board woke up at t_ms (battery charge per wake-up; PSU current pulse). Moves now_ms
        like an event but does not start a segment (nothing in the line changes): O(1).
        from_cell False: a wake-up that host input caused, powered by the host link."""
        with self._lock:
            if t_ms < self.now_ms:
                raise self._too_early(t_ms)
            self.now_ms = t_ms
            if self.powered:
                self.last_wake_ms = t_ms
                if self._drawing and from_cell:
                    self._used_uc += self._wake_uc

    # ----------------------------------------------------------------- pressure sensor
    def _drift_at(self, t_ms: float) -> float:
        p = self.params
        knot_ms = p.drift_knot_ms
        i = int(t_ms // knot_ms)
        knots = self._drift_knots
        while len(knots) <= i + 1:
            v = knots[-1] + self._rng_drift.gauss(0.0, p.drift_step_sigma_pa)
            m = p.drift_max_pa
            if v > m:
                v = 2 * m - v
            elif v < -m:
                v = -2 * m - v
            knots.append(v)
        f = (t_ms - i * knot_ms) / knot_ms
        return knots[i] + (knots[i + 1] - knots[i]) * f

    def line_pressure_pa(self, t_ms: int) -> float:
        """Noise-free pressure at the pump-outlet sensor (Pa): filtered CSF + line over-pressure."""
        with self._lock:
            self._check_time(t_ms)
            d = self._decay(t_ms - self._t0)
            base = self._base_target + (self._base0 - self._base_target) * d
            return (
                base
                + self._pline0 * d
                + self._amp_c * math.sin(self._w_c * t_ms - self._lag_c)
                + self._amp_r * math.sin(self._w_r * t_ms - self._lag_r)
            )

    def csf_at_tip_pa(self, t_ms: int) -> float:
        """Unfiltered pressure of the space the tip is in (what the phantom's own gauge reads)."""
        with self._lock:
            p = self.params
            if self.dislodged:
                base = p.tissue_pressure_pa
                f = p.dislodged_pulsation_fraction
            else:
                base = self.csf_baseline_pa
                f = 1.0
            return base + f * (
                self.cardiac_amplitude_pa * math.sin(self._w_c * t_ms)
                + self.respiratory_amplitude_pa * math.sin(self._w_r * t_ms)
            )

    def pressure_pa(self, t_ms: int) -> int:
        """One sensor reading at t_ms: integer Pa incl. noise, drift and 12-bit ADC quantisation."""
        out = [0]
        self.capture(t_ms, 0, out, 1)
        return out[0]

    def capture(self, t_start_ms: int, period_ms: int, out: MutableSequence[int], n: int,
                start: int = 0) -> None:
        """Fill out[start:start + n] with sensor readings at t_start_ms + i*period_ms (integer Pa).

        The batch form the board uses for a sensing window (100 samples at 40 ms) or a
        stroke-response capture (50 samples at 40 ms): one call, closed-form per sample.
        Samples at or after a later event are evaluated with the current segment, so the caller
        must capture only up to its next event (the board knows it). A capture is a query: it
        does not move plant time (now_ms); only events and advance_to do.

        Per sample, in ADC-code units: baseline relaxing towards its target and line
        over-pressure, both decaying with tau; the two low-passed tones; the piecewise-linear
        drift; Gaussian noise (a window of the pre-scaled table: random start, odd stride); then
        the 12-bit quantisation (clamped at the rails)."""
        with self._lock:
            t0 = self._t0
            if t_start_ms < t0:
                self._check_time(t_start_ms)
            if n <= 0:
                return
            r = self._rng_noise.getrandbits(_NOISE_DRAW_BITS)
            pos = r & _NOISE_MASK
            stride = (r >> _NOISE_TABLE_BITS) * 2 + 1
            span = period_ms * (n - 1)
            noise_end = pos + stride * (n - 1) + 1
            tones = self._tones
            knot_ms = self._knot_ms
            i = t_start_ms // knot_ms
            # the fast path: a tone table, one drift piece, one slice of each table
            if (tones is None or (t_start_ms + span) // knot_ms != i or not 0 <= span < _TONE_EXT_MS
                    or noise_end > _NOISE_LEN):
                self._capture_general(t_start_ms, period_ms, out, n, pos, stride, start)
                return
            if i != self._drift_i:
                self._drift_piece(i)
            slope = self._drift_slope
            c = self._c0 + self._drift_v + slope * (t_start_ms - self._drift_t)
            ds = slope * period_ms
            tau = self._tau_ms
            ad = (self._base0 - self._base_target + self._pline0) * self._k * _exp((t0 - t_start_ms) / tau)
            # every reading must fall inside the ADC range (no clamping in the loop below); the
            # transient ad runs monotonically towards 0
            reach = self._reach + self._drift_reach
            if ad >= 0.0:
                inside = 0.0 < c - reach and c + ad + reach < self._top
            else:
                inside = 0.0 < c + ad - reach and c + reach < self._top
            if not inside:
                self._capture_general(t_start_ms, period_ms, out, n, pos, stride, start)
                return
            ts = t_start_ms % self._tone_p
            level = self._levels
            if _COMPILED:
                # compiled (pumphil/accel.py): an indexed loop over unboxed floats beats the slices
                # below; the same float operations in the same order, so the same readings
                rows = self._noise_rows[stride]
                if rows is None:
                    rows = self._make_noise_rows(stride)
                noise = rows[pos % stride]              # noise[pos + j * stride] = row[ni + j]
                if period_ms > 0:
                    if self._rows_of is not tones or self._rows_period != period_ms:
                        self._make_rows(tones, period_ms)
                    row = self._rows[ts % period_ms]    # tones[ts + j * period_ms] = row[ti + j]
                    ti = ts // period_ms
                    step = 1
                else:
                    row = tones
                    ti = ts
                    step = 0
                ni = pos // stride
                if -_NEGLIGIBLE_CODES < ad < _NEGLIGIBLE_CODES:
                    for oj in range(start, start + n):
                        out[oj] = level[int(c + (row[ti] + noise[ni]))]
                        c += ds
                        ti += step
                        ni += 1
                else:
                    q = _exp(-period_ms / tau)
                    for oj in range(start, start + n):
                        out[oj] = level[int(c + ad + (row[ti] + noise[ni]))]
                        c += ds
                        ad *= q
                        ti += step
                        ni += 1
            else:
                if period_ms:
                    xs = map(add, tones[ts:ts + span + 1:period_ms], self._noise[pos:noise_end:stride])
                else:
                    xs = map(add, tones[ts:ts + 1] * n, self._noise[pos:noise_end:stride])
                j = start
                if -_NEGLIGIBLE_CODES < ad < _NEGLIGIBLE_CODES:
                    for x in xs:
                        out[j] = level[int(c + x)]
                        c += ds
                        j += 1
                else:
                    q = _exp(-period_ms / tau)
                    for x in xs:
                        out[j] = level[int(c + ad + x)]
                        c += ds
                        ad *= q
                        j += 1
            self.samples_taken += n
            if self._drawing:
                self._used_uc += n * self._sample_uc

    def _make_rows(self, tones: list[float], period_ms: int) -> None:
        """The tone table in rows by period_ms (see __init__): bit-for-bit copies of its entries
        (through an array of doubles: new float objects allocated one after another)."""
        self._rows = [list(array("d", tones[r::period_ms])) for r in range(period_ms)]
        self._rows_of = tones
        self._rows_period = period_ms

    def _make_noise_rows(self, stride: int) -> list[list[float]]:
        """The noise table in rows by stride (see __init__), bit-for-bit copies."""
        noise = self._noise
        rows = [list(array("d", noise[r::stride])) for r in range(stride)]
        self._noise_rows[stride] = rows
        return rows

    def _drift_piece(self, i: int) -> None:
        """Cache the drift between knots i and i+1 for the fast capture path (code units)."""
        knot_ms = self._knot_ms
        if len(self._drift_knots) <= i + 2:
            self._drift_at(i * knot_ms + knot_ms)  # draws the knots up to i + 2, as it always did
        v = self._drift_knots[i]
        k = self._k
        self._drift_t = i * knot_ms
        self._drift_v = v * k
        slope = (self._drift_knots[i + 1] - v) / knot_ms * k
        self._drift_slope = slope
        self._drift_reach = abs(slope) * _TONE_EXT_MS  # the most a capture's drift ramp can add
        self._drift_i = i

    def _capture_general(self, t_start_ms: int, period_ms: int, out: MutableSequence[int], n: int,
                         pos: int, stride: int, start: int) -> None:
        """capture() for every case (the lock is held, n > 0, the noise window is drawn): the
        tones as rotating phasors, drift per sample across knots, clamping at the ADC rails."""
        self.general_captures += 1
        tau = self._tau_ms
        k = self._k
        bt = self._base_target
        c = (bt - self._lo) * k
        exp = math.exp
        ad = (self._base0 - bt + self._pline0) * k * exp((self._t0 - t_start_ms) / tau)
        q = exp(-period_ms / tau)
        # the two tones as rotating phasors: one complex multiply per sample and tone; the start
        # phase from the time within the tone's period when it has one (as the table does)
        w_c, w_r = self._w_c, self._w_r
        tc = t_start_ms % self._p_c if self._p_c else t_start_ms
        tr = t_start_ms % self._p_r if self._p_r else t_start_ms
        zc = cmath.exp(1j * (w_c * tc - self._lag_c)) * (self._amp_c * k)
        rc = cmath.exp(1j * w_c * period_ms)
        zr = cmath.exp(1j * (w_r * tr - self._lag_r)) * (self._amp_r * k)
        rr = cmath.exp(1j * w_r * period_ms)
        # drift is piecewise linear between knots: one linear piece per capture when it fits
        drift_at = self._drift_at
        knot_ms = self._knot_ms
        t_last = t_start_ms + (n - 1) * period_ms
        piecewise = t_start_ms // knot_ms != t_last // knot_ms
        drift = drift_at(t_start_ms) * k
        drift_step = 0.0 if piecewise or n < 2 else (drift_at(t_last) * k - drift) / (n - 1)
        noise = self._noise
        bits = self._bits
        levels = self._levels
        top = self._top
        t = t_start_ms
        for i in range(n):
            if piecewise:
                drift = drift_at(t) * k
                t += period_ms
            x = c + ad + zc.imag + zr.imag + drift + noise[pos]
            zc *= rc
            zr *= rr
            ad *= q
            drift += drift_step
            pos = (pos + stride) & _NOISE_MASK
            if bits:
                code = int(x)
                if code < 0:
                    code = 0
                elif code > top:
                    code = top
                out[start + i] = levels[code]
            else:
                out[start + i] = round(x)
        self.samples_taken += n
        if self._drawing:
            self._used_uc += n * self._sample_uc
        # a tone setting in use for a while gets its table (then the fast path takes over)
        if self._tones is None and self._tone_p:
            self._slow_samples += n
            length = self._tone_p + _TONE_EXT_MS
            if self._slow_samples >= length * self._table_payback:
                self._tones = self._tone_table()

    def _tone_table(self) -> list[float]:
        key = self._tone_key
        amp_c, w_c, lag_c, p_c, amp_r, w_r, lag_r, p_r = key
        table = _tone_table(amp_c, w_c, lag_c, int(p_c), amp_r, w_r, lag_r, int(p_r),
                            self._tone_p + _TONE_EXT_MS)
        tables = self._tone_tables
        while len(tables) >= _TONE_TABLES_KEPT:
            del tables[next(iter(tables))]
        tables[key] = table
        return table

    # ----------------------------------------------------------------- faults
    def occlude(self, severity: str = "complete", factor: float | None = None,
                t_ms: int | None = None) -> None:
        """Occlude the catheter: "partial" multiplies R (and tau) by factor (default
        params.partial_occlusion_factor, >= 10 by definition); "complete" (distal) makes R infinite:
        the line never decays and no CSF pulsation reaches the sensor."""
        if severity not in SEVERITIES:
            raise ValueError("severity must be 'partial' or 'complete'")
        k = self.params.partial_occlusion_factor if factor is None else float(factor)
        if k <= 1.0:
            raise ValueError("occlusion factor must be > 1")

        def apply() -> None:
            self.occlusion = severity
            self.occlusion_factor = k

        self._change(t_ms, apply)

    def clear_occlusion(self, t_ms: int | None = None) -> None:
        """Remove the occlusion; what the line stored is released (released_after_occlusion_nl)."""

        def apply() -> None:
            if self.occlusion is not None:
                self._pending0 = self._pline0 * self.params.compliance_nl_per_pa
            self.occlusion = None

        self._change(t_ms, apply)

    def dislodge(self, t_ms: int | None = None) -> None:
        """The tip leaves the intrathecal space: baseline -> tissue pressure, pulsation x fraction."""
        self._change(t_ms, lambda: setattr(self, "dislodged", True))

    def reseat(self, t_ms: int | None = None) -> None:
        self._change(t_ms, lambda: setattr(self, "dislodged", False))

    def leak(self, t_ms: int | None = None) -> None:
        """Leak/disconnection near the pump: R / leak_factor, baseline 0 Pa, no pulsation; the
        fluid goes to leaked_nl, not to the outlet."""
        self._change(t_ms, lambda: setattr(self, "leaking", True))

    def clear_leak(self, t_ms: int | None = None) -> None:
        self._change(t_ms, lambda: setattr(self, "leaking", False))

    def motor_stall(self, on: bool = True, t_ms: int | None = None) -> None:
        """Inject (on=True) or clear a motor stall: strokes give no feedback pulse and move nothing."""
        self._change(t_ms, lambda: setattr(self, "stalled", bool(on)))

    def set_csf(self, t_ms: int | None = None, *, baseline_pa: float | None = None,
                cardiac_amplitude_pa: float | None = None, cardiac_hz: float | None = None,
                respiratory_amplitude_pa: float | None = None,
                respiratory_hz: float | None = None) -> None:
        """Change the CSF (phantom) figures; None keeps a figure."""

        def apply() -> None:
            if baseline_pa is not None:
                self.csf_baseline_pa = float(baseline_pa)
            if cardiac_amplitude_pa is not None:
                self.cardiac_amplitude_pa = float(cardiac_amplitude_pa)
            if cardiac_hz is not None:
                self.cardiac_hz = float(cardiac_hz)
            if respiratory_amplitude_pa is not None:
                self.respiratory_amplitude_pa = float(respiratory_amplitude_pa)
            if respiratory_hz is not None:
                self.respiratory_hz = float(respiratory_hz)

        self._change(t_ms, apply)

    # ----------------------------------------------------------------- power and battery
    def add_power_listener(self, fn: Callable[[bool], None]) -> None:
        """fn(on) is called (outside the plant lock) whenever power() changes the power state."""
        self._power_listeners.append(fn)

    def power(self, on: bool, t_ms: int | None = None) -> None:
        """Board power on/off (battery switch or the bench supply's output)."""
        with self._lock:
            changed = bool(on) != self.powered
            self._settle(self.now_ms if t_ms is None else t_ms)
            self._account_drain()
            self.powered = bool(on)
            self._account_drain()
        if changed:
            for fn in list(self._power_listeners):
                fn(bool(on))

    def set_external_supply(self, mv: float | None, t_ms: int | None = None) -> None:
        """The bench supply replaces the cell (mv) or not (None): battery_mv() reports it and the
        cell is not drained while it is set."""
        with self._lock:
            self._settle(self.now_ms if t_ms is None else t_ms)
            self._account_drain()
            self.external_supply_mv = None if mv is None else float(mv)
            self._account_drain()

    def _account_drain(self) -> None:
        """Book the sleep current since the last booking; (re)start or stop the meter."""
        now = self.now_ms
        if self._drain_since_ms is not None:
            self._used_uc += self.params.battery.sleep_current_ua * (now - self._drain_since_ms) / 1000.0
        drawing = self.powered and self.external_supply_mv is None
        self._drawing = drawing
        self._drain_since_ms = now if drawing else None

    def _used_now_uc(self) -> float:
        used = self._used_uc
        if self._drain_since_ms is not None:
            used += self.params.battery.sleep_current_ua * (self.now_ms - self._drain_since_ms) / 1000.0
        return used

    def battery_percent(self) -> float:
        """Remaining cell charge in % (0..100) at now_ms."""
        with self._lock:
            left = 1.0 - self._used_now_uc() / self._capacity_uc
            return max(0.0, min(100.0, 100.0 * left))

    def set_battery_percent(self, percent: float) -> None:
        """Set the remaining cell charge (fault injection: a worn cell)."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError("percent must be within 0..100")
        with self._lock:
            self._account_drain()
            self._used_uc = self._capacity_uc * (1.0 - percent / 100.0)

    def battery_mv(self) -> int:
        """Supply voltage the board sees (mV): the bench supply if set, else the cell's
        open-circuit voltage from the discharge curve."""
        with self._lock:
            if self.external_supply_mv is not None:
                return round(self.external_supply_mv)
            pct = self.battery_percent()
            curve = self.params.battery.curve
            for (p_hi, v_hi), (p_lo, v_lo) in itertools.pairwise(curve):
                if pct >= p_lo:
                    return round(v_lo + (v_hi - v_lo) * (pct - p_lo) / (p_hi - p_lo))
            return round(curve[-1][1])

    def current_ma(self) -> float:
        """Instantaneous board current at now_ms (what a bench supply measures): sleep current plus
        the stroke pulse and the wake-up pulse while they last. 0 when unpowered."""
        b = self.params.battery
        with self._lock:
            if not self.powered:
                return 0.0
            i = b.sleep_current_ua / 1000.0
            now = self.now_ms
            if self.last_stroke_ms is not None and 0 <= now - self.last_stroke_ms < b.stroke_duration_ms:
                i += b.stroke_current_ma
            if self.last_wake_ms is not None and 0 <= now - self.last_wake_ms < b.wake_duration_ms:
                i += b.wake_current_ma
            return i

    # ----------------------------------------------------------------- measured outputs
    def _line_out_now(self) -> float:
        d = self._decay(self.now_ms - self._t0)
        return (self._pline0 - self._pline0 * d) * self.params.compliance_nl_per_pa

    @property
    def delivered_to_outlet_nl(self) -> float:
        """Fluid that has left the catheter tip by now_ms (nL)."""
        with self._lock:
            return self._out_tip_nl + self._line_out_now() * self._frac_tip

    @property
    def leaked_nl(self) -> float:
        with self._lock:
            return self._out_leak_nl + self._line_out_now() * (1.0 - self._frac_tip)

    @property
    def released_after_occlusion_nl(self) -> float:
        with self._lock:
            d = self._decay(self.now_ms - self._t0)
            return self._released_nl + (self._pending0 - self._pending0 * d) * self._frac_tip

    @property
    def stored_in_line_nl(self) -> float:
        """Volume held by the line's compliance above its relaxed state (nL)."""
        with self._lock:
            return self._pline0 * self._decay(self.now_ms - self._t0) * self.params.compliance_nl_per_pa

    def state(self) -> dict[str, object]:
        """A plain snapshot for logs, reports and debugging."""
        with self._lock:
            return {
                "now_ms": self.now_ms,
                "reservoir_nl": self.reservoir_nl,
                "delivered_to_outlet_nl": self.delivered_to_outlet_nl,
                "leaked_nl": self.leaked_nl,
                "released_after_occlusion_nl": self.released_after_occlusion_nl,
                "stored_in_line_nl": self.stored_in_line_nl,
                "strokes_ok": self.strokes_ok,
                "strokes_failed": self.strokes_failed,
                "occlusion": self.occlusion,
                "dislodged": self.dislodged,
                "leaking": self.leaking,
                "stalled": self.stalled,
                "powered": self.powered,
                "battery_percent": self.battery_percent(),
                "battery_mv": self.battery_mv(),
                "tau_s": self.tau_s,
            }
