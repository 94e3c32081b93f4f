"""Plant physics (hil/pumphil/plant) against the shared physics contract in docs/emulator.md."""

from __future__ import annotations

import itertools
import math
import random
from array import array
from collections.abc import Callable

import pytest
from plant_faults import CATHETER_FAULTS, inject
from pumphil.plant import Plant, PlantParams, lowpass_gain
from pumphil.plant.model import tone_period_ms


def general_plant(seed: int, params: PlantParams | None = None) -> Plant:
    """A plant that never reads the tones from a table: every capture takes the general path."""
    return Plant(seed, params, tone_table=False)


def table_plant(seed: int, params: PlantParams | None = None) -> Plant:
    """A plant that builds its tone table at the first capture (the fast path from the second)."""
    plant = Plant(seed, params)
    plant._table_payback = 0.0
    return plant


def quiet_params(**kw: object) -> PlantParams:
    """No jitter, noise, drift or quantisation: exact physics."""
    p = PlantParams(stroke_jitter=0.0, noise_sigma_pa=0.0, drift_step_sigma_pa=0.0, adc_bits=0)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def no_pulsation(plant: Plant) -> None:
    plant.set_csf(cardiac_amplitude_pa=0.0, respiratory_amplitude_pa=0.0)


def tone_amplitude(plant: Plant, t0_ms: int, freq_hz: float, seconds: int) -> float:
    """Amplitude of the freq_hz component of the noise-free sensor pressure (quadrature over an
    integer number of periods of both tones)."""
    n = seconds * 100
    a = b = 0.0
    for i in range(n):
        t = t0_ms + i * 10
        x = plant.line_pressure_pa(t)
        w = 2 * math.pi * freq_hz * t / 1000.0
        a += x * math.sin(w)
        b += x * math.cos(w)
    return 2.0 * math.hypot(a, b) / n


def test_lowpass_gain_figures_documented() -> None:
    # docs/emulator.md: nominal tau 0.3 s transmits 0.40 of the cardiac tone, 0.90 of respiration
    assert lowpass_gain(1.2, 0.3) == pytest.approx(0.4043, abs=1e-3)
    assert lowpass_gain(0.25, 0.3) == pytest.approx(0.9046, abs=1e-3)
    assert lowpass_gain(1.2, 3.0) == pytest.approx(0.0442, abs=1e-3)
    assert lowpass_gain(1.2, math.inf) == 0.0


def test_stroke_raises_line_pressure_by_dp_and_decays_with_tau() -> None:
    plant = Plant(1, quiet_params())
    no_pulsation(plant)
    plant.advance_to(10_000)
    before = plant.line_pressure_pa(10_000)
    assert before == pytest.approx(1300.0)
    assert plant.stroke(10_000)
    # 250 nL * 1.01 (mechanical accuracy) into C = 1 nL/Pa
    assert plant.line_pressure_pa(10_000) - before == pytest.approx(252.5)
    assert plant.line_pressure_pa(10_300) - before == pytest.approx(252.5 / math.e)
    assert plant.line_pressure_pa(12_000) - before == pytest.approx(252.5 * math.exp(-2 / 0.3))


def test_volume_is_conserved_and_accuracy_is_plus_one_percent() -> None:
    params = PlantParams()  # with jitter
    plant = Plant(7, params)
    fill = plant.reservoir_nl
    for k in range(1000):
        assert plant.stroke(1000 + k * 30_000)
    plant.advance_to(1000 + 1000 * 30_000 + 10_000)
    moved = fill - plant.reservoir_nl
    assert moved == pytest.approx(1000 * 252.5, rel=1e-3)
    assert plant.delivered_to_outlet_nl + plant.stored_in_line_nl + plant.leaked_nl == pytest.approx(
        moved
    )
    assert plant.delivered_to_outlet_nl == pytest.approx(moved, rel=1e-6)


def test_stroke_jitter_draws_are_random_gauss_of_the_stroke_generator() -> None:
    # Plant._stroke_gauss re-implements random.Random.gauss for the compiled build: the same
    # sequence of stroke volumes as gauss() on a copy of the stroke generator
    plant = Plant(11, PlantParams())
    ref = random.Random()
    ref.setstate(plant._rng_stroke.getstate())
    for k in range(301):                 # odd: the cached second value of a pair is used too
        before = plant.reservoir_nl
        assert plant.stroke(1000 + k * 30_000)
        want = plant._stroke_vol * (1.0 + ref.gauss(0.0, plant._jitter))
        assert before - plant.reservoir_nl == pytest.approx(want, abs=1e-6), k   # reservoir ulp ~4e-9 nL


def test_outflow_follows_the_line_decay() -> None:
    plant = Plant(1, quiet_params())
    plant.stroke(0)
    plant.advance_to(300)
    assert plant.delivered_to_outlet_nl == pytest.approx(252.5 * (1 - math.exp(-1)))
    assert plant.stored_in_line_nl == pytest.approx(252.5 * math.exp(-1))


def test_empty_reservoir_moves_no_fluid_but_motor_turns() -> None:
    plant = Plant(1, quiet_params(reservoir_fill_nl=300.0))
    assert plant.stroke(0)
    assert plant.stroke(10_000)  # only 47.5 nL left
    assert plant.stroke(20_000)  # empty: the mechanism still turns
    plant.advance_to(60_000)
    assert plant.reservoir_nl == 0.0
    assert plant.delivered_to_outlet_nl == pytest.approx(300.0)


def test_stall_and_power_off_give_no_feedback_and_no_fluid() -> None:
    plant = Plant(1, quiet_params())
    plant.motor_stall(True, 0)
    assert not plant.stroke(10)
    plant.motor_stall(False, 20)
    plant.power(False, 30)
    assert not plant.stroke(40)
    plant.power(True, 50)
    assert plant.stroke(60)
    assert plant.strokes_ok == 1 and plant.strokes_failed == 2
    assert plant.stroked_nl == pytest.approx(252.5)


def test_complete_occlusion_accumulates_and_releases_after_clearing() -> None:
    plant = Plant(1, quiet_params())
    no_pulsation(plant)
    plant.advance_to(5_000)
    base = plant.line_pressure_pa(5_000)
    plant.occlude("complete")
    for k in range(8):
        assert plant.stroke(6_000 + k * 10_000)
    t = 6_000 + 8 * 10_000
    # every stroke adds dP, nothing decays, no pulsation reaches the sensor
    for dt in (0, 1_000, 2_345, 10_000):
        assert plant.line_pressure_pa(t + dt) - base == pytest.approx(8 * 252.5, abs=1e-6)
    assert plant.delivered_to_outlet_nl == pytest.approx(0.0, abs=1e-6)
    plant.advance_to(t + 10_000)
    plant.clear_occlusion()
    plant.advance_to(t + 20_000)
    assert plant.released_after_occlusion_nl == pytest.approx(8 * 252.5, rel=1e-6)
    assert plant.delivered_to_outlet_nl == pytest.approx(8 * 252.5, rel=1e-6)
    # later strokes are normal delivery, not counted as released
    plant.stroke(t + 30_000)
    plant.advance_to(t + 40_000)
    assert plant.released_after_occlusion_nl == pytest.approx(8 * 252.5, rel=1e-6)


def test_motor_stalls_above_stall_pressure() -> None:
    plant = Plant(1, quiet_params(stall_pressure_pa=1000.0))
    plant.occlude("complete", t_ms=0)
    results = [plant.stroke(1_000 + k * 1_000) for k in range(6)]
    assert results == [True, True, True, True, False, False]


def test_partial_occlusion_multiplies_tau_and_attenuates_pulsation() -> None:
    plant = Plant(1, quiet_params())
    nominal = tone_amplitude(plant, 0, 1.2, 20)
    assert nominal == pytest.approx(150.0 * lowpass_gain(1.2, 0.3), rel=0.02)
    assert tone_amplitude(plant, 0, 0.25, 20) == pytest.approx(100 * lowpass_gain(0.25, 0.3), rel=0.02)
    plant.occlude("partial", 10, t_ms=20_000)
    assert plant.tau_s == pytest.approx(3.0)
    partial = tone_amplitude(plant, 40_000, 1.2, 20)
    assert partial == pytest.approx(150.0 * lowpass_gain(1.2, 3.0), rel=0.05)
    assert partial < nominal / 5
    no_pulsation(plant)
    plant.advance_to(100_000)
    base = plant.line_pressure_pa(100_000)
    plant.stroke(100_000)
    assert plant.line_pressure_pa(103_000) - base == pytest.approx(252.5 / math.e, rel=1e-6)


def test_complete_occlusion_blocks_pulsation() -> None:
    plant = Plant(1, quiet_params())
    plant.occlude("complete", t_ms=1_000)
    assert tone_amplitude(plant, 2_000, 1.2, 20) == pytest.approx(0.0, abs=1e-6)
    assert tone_amplitude(plant, 2_000, 0.25, 20) == pytest.approx(0.0, abs=1e-6)


def test_dislodgement_changes_baseline_and_pulsation() -> None:
    plant = Plant(1, quiet_params())
    plant.dislodge(t_ms=10_000)
    p = plant.line_pressure_pa(20_000)
    # baseline 300 Pa (tissue), pulsation at most 10 % of intrathecal
    assert abs(p - 300.0) <= 0.1 * (150 + 100) + 1e-6
    assert tone_amplitude(plant, 20_000, 1.2, 20) == pytest.approx(
        15.0 * lowpass_gain(1.2, 0.3), rel=0.05
    )
    plant.reseat(t_ms=40_000)
    assert abs(plant.line_pressure_pa(50_000) - 1300.0) <= 250.0
    # the baseline follows with the catheter time constant
    plant2 = Plant(1, quiet_params())
    no_pulsation(plant2)
    plant2.dislodge(t_ms=0)
    assert plant2.line_pressure_pa(300) == pytest.approx(300 + 1000 / math.e)


def test_leak_hides_stroke_response_and_loses_fluid() -> None:
    plant = Plant(1, quiet_params())
    plant.leak(t_ms=1_000)
    assert plant.tau_s == pytest.approx(0.015)
    assert plant.line_pressure_pa(5_000) == pytest.approx(0.0, abs=1e-6)  # baseline 0, no pulsation
    plant.stroke(5_000)
    assert plant.line_pressure_pa(5_040) < 20.0  # first 25 Hz sample after the stroke: tiny
    plant.advance_to(10_000)
    assert plant.leaked_nl == pytest.approx(252.5)
    assert plant.delivered_to_outlet_nl == pytest.approx(0.0, abs=1e-6)
    plant.clear_leak()
    assert plant.tau_s == pytest.approx(0.3)


@pytest.mark.parametrize("make", [table_plant, general_plant], ids=["tone-table", "general"])
def test_sensor_noise_quantisation_and_bounded_drift(make: Callable[[int], Plant]) -> None:
    plant = make(3)
    no_pulsation(plant)
    out = [0] * 100
    samples: list[int] = []
    for k in range(50):
        plant.capture(k * 10_000, 40, out, 100)
        samples.extend(out)
    mean = sum(samples) / len(samples)
    sd = math.sqrt(sum((x - mean) ** 2 for x in samples) / len(samples))
    assert abs(mean - 1300.0) < 110.0  # drift bounded by 100 Pa
    assert 12.0 < sd < 20.0  # sigma 15 Pa (+ quantisation and a little drift)
    assert all(isinstance(x, int) for x in samples)
    lsb = 40_000 / 4096
    assert all(abs(((x + 5000) / lsb) % 1.0 - 0.5) < 0.06 for x in samples)  # ADC code centres
    # drift stays within +-100 Pa over a month
    drifts = [plant._drift_at(t) for t in range(0, 30 * 86_400_000, 3_600_000)]
    assert max(abs(d) for d in drifts) <= 100.0
    assert max(drifts) - min(drifts) > 10.0  # it does wander


def test_deterministic_from_seed() -> None:
    def run(seed: int) -> list[int]:
        plant = Plant(seed)
        out = [0] * 55
        res: list[int] = []
        for k in range(20):
            t = 1_000 + k * 30_000
            plant.capture(t - 200, 40, out, 5)
            plant.stroke(t)
            plant.capture(t + 40, 40, out, 50)
            res.extend(out)
        res.append(int(plant.delivered_to_outlet_nl * 1000))
        return res

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_events_must_not_go_back_in_time() -> None:
    plant = Plant(1)
    plant.stroke(10_000)
    with pytest.raises(ValueError):
        plant.stroke(9_999)
    with pytest.raises(ValueError):
        plant.pressure_pa(9_000)
    # queries at any time after the last event, in any order, are fine
    assert plant.pressure_pa(12_000) > 0
    assert plant.pressure_pa(11_000) > 0
    with pytest.raises(ValueError):
        plant.occlude("total")


def test_battery_drains_per_stroke_wake_sample_and_sleep() -> None:
    params = PlantParams()
    b = params.battery
    plant = Plant(1, params)
    cap_uc = b.capacity_mah * 3.6e6
    plant.advance_to(3_600_000)  # one hour of sleep current
    assert 100 - plant.battery_percent() == pytest.approx(100 * b.sleep_current_ua * 3600 / cap_uc)
    before = plant.battery_percent()
    plant.stroke(3_600_000)
    used = 100 * b.stroke_current_ma * b.stroke_duration_ms / cap_uc
    assert before - plant.battery_percent() == pytest.approx(used, rel=1e-6)
    before = plant.battery_percent()
    plant.wake(3_600_000)
    plant.capture(3_600_000, 40, [0] * 10, 10)
    plant.advance_to(3_600_360)  # time passes over the capture: sleep current meanwhile
    sleep_uc = b.sleep_current_ua * 0.36
    used = 100 * (b.wake_current_ma * b.wake_duration_ms + 10 * b.sample_charge_uc + sleep_uc) / cap_uc
    assert before - plant.battery_percent() == pytest.approx(used, rel=1e-6)
    plant.set_battery_percent(50.0)
    assert plant.battery_percent() == pytest.approx(50.0)
    assert plant.battery_mv() == 3600
    volts = []
    for pct in (100, 60, 20, 8, 3, 0):
        plant.set_battery_percent(pct)
        volts.append(plant.battery_mv())
    assert volts == sorted(volts, reverse=True) and volts[0] == 3650 and volts[-1] == 2700


def test_external_supply_and_current_pulses() -> None:
    plant = Plant(1)
    plant.set_external_supply(3300.0, 0)
    before = plant.battery_percent()
    plant.stroke(1_000)
    plant.advance_to(3_600_000)
    assert plant.battery_percent() == before  # the bench supply, not the cell, feeds the board
    assert plant.battery_mv() == 3300
    plant.stroke(3_600_000)
    plant.advance_to(3_600_010)
    assert plant.current_ma() == pytest.approx(60.0 + 0.010)
    plant.advance_to(3_600_100)
    assert plant.current_ma() == pytest.approx(0.010)
    plant.power(False)
    assert plant.current_ma() == 0.0


def test_power_listeners_hear_changes_only() -> None:
    plant = Plant(1)
    heard: list[bool] = []
    plant.add_power_listener(heard.append)
    plant.power(True)
    plant.power(False)
    plant.power(False)
    plant.power(True)
    assert heard == [False, True]


def test_csf_settings_move_baseline_and_heart_rate() -> None:
    plant = Plant(1, quiet_params())
    plant.set_csf(0, baseline_pa=1500.0, cardiac_hz=2.0, respiratory_amplitude_pa=0.0)
    assert tone_amplitude(plant, 10_000, 2.0, 20) == pytest.approx(150 * lowpass_gain(2.0, 0.3), rel=0.02)
    assert plant.csf_at_tip_pa(10_000) == pytest.approx(1500.0 + 150 * math.sin(2 * math.pi * 20))


def test_capture_matches_the_closed_form_and_fills_arrays() -> None:
    from array import array

    for fault in (None, "partial", "complete", "dislodge", "leak"):
        plant = Plant(2, quiet_params())
        if fault in ("partial", "complete"):
            plant.occlude(fault, t_ms=500)
        elif fault == "dislodge":
            plant.dislodge(t_ms=500)
        elif fault == "leak":
            plant.leak(t_ms=500)
        plant.stroke(1_000)
        buf = array("i", [0] * 50)
        plant.capture(1_040, 40, buf, 50)
        for i in range(50):
            assert abs(buf[i] - plant.line_pressure_pa(1_040 + 40 * i)) <= 0.5 + 1e-9, (fault, i)
    # with the ADC on, readings sit within half a code of the truth (no noise, no drift)
    plant = Plant(2, PlantParams(noise_sigma_pa=0.0, drift_step_sigma_pa=0.0))
    buf = array("i", [0] * 100)
    plant.capture(0, 40, buf, 100)
    for i in range(100):
        assert abs(buf[i] - plant.line_pressure_pa(40 * i)) <= 40_000 / 4096 / 2 + 0.5


def test_tone_period_ms() -> None:
    assert tone_period_ms(1.2) == 2500  # 3 cycles
    assert tone_period_ms(0.25) == 4000
    assert tone_period_ms(2.0) == 500
    assert tone_period_ms(68 / 60) == 15000  # 68 bpm: 17 cycles
    assert tone_period_ms(0.8 + 0.1) == 10000  # a float a bit off 0.9 is still 0.9 Hz
    assert tone_period_ms(0.0) == 1
    assert tone_period_ms(1 / math.sqrt(2)) == 0  # no short period: the general path
    assert tone_period_ms(1.0001) == 0  # repeats at integer ms only every 10 000 s: no table


def test_fast_and_general_capture_paths_agree() -> None:
    """The tone-table path and the general per-sample path give the same readings for the same
    calls: after strokes and at steady state, under every fault, clipping at the ADC rails,
    captures across drift knots, period 0, long captures and a tone with no short period."""

    def run(plant: Plant) -> list[int]:
        rnd = random.Random(1)
        out = array("i", [0] * 400)
        res: list[int] = []
        t = 0
        for k in range(700):
            t += rnd.randrange(6_000, 40_000)
            plant.capture(t - 200, 40, out, 5)
            res.extend(out[:5])
            plant.stroke(t)
            n = rnd.choice((1, 5, 20, 30, 50, 100, 300))
            plant.capture(t + 40, rnd.choice((40, 40, 40, 0, 7)), out, n)
            res.extend(out[:n])
            fault = {100: "partial", 150: "clear", 200: "dislodge", 250: "reseat", 300: "leak",
                     350: "clear_leak", 400: "complete", 560: "clear", 600: "csf", 650: "csf2"}.get(k)
            ft = t + 5_000
            if fault in CATHETER_FAULTS:
                inject(plant, fault, ft)
            elif fault == "csf":
                plant.set_csf(ft, cardiac_hz=1 / math.sqrt(2))  # no table for this one
            elif fault == "csf2":
                plant.set_csf(ft, baseline_pa=1100.0, cardiac_hz=1.5, respiratory_hz=0.3)
        return res

    fast = table_plant(11, PlantParams(stall_pressure_pa=60_000.0))
    readings = run(fast)
    assert readings == run(general_plant(11, PlantParams(stall_pressure_pa=60_000.0)))
    assert 35_000 > max(readings) > 30_000  # the complete occlusion reached the top rail
    assert fast.general_captures < 0.3 * 1400  # most captures took the fast path


def test_noise_is_white_within_and_across_captures() -> None:
    plant = table_plant(4, PlantParams(drift_step_sigma_pa=0.0))
    no_pulsation(plant)
    out = [0] * 20
    prev: list[float] = []
    lag1 = 0.0
    across = 0.0
    total = 0.0
    count = 0
    for k in range(1500):
        plant.capture(60_000 + k * 1_000, 40, out, 20)
        x = [v - 1300.0 for v in out]
        total += sum(v * v for v in x)
        count += len(x)
        lag1 += sum(a * b for a, b in itertools.pairwise(x))
        if prev:
            across += sum(a * b for a, b in zip(prev, x, strict=True))
        prev = x
    var = total / count
    assert 13.5 ** 2 < var < 17.0 ** 2
    assert abs(lag1 / (1500 * 19) / var) < 0.03  # consecutive samples are uncorrelated
    assert abs(across / (1499 * 20) / var) < 0.03  # ... and so are consecutive captures


def test_wake_books_its_charge_and_leaves_the_line_alone() -> None:
    b = PlantParams().battery
    quiet, woken = Plant(5), Plant(5)
    for k in range(200):
        t = 1_000 + k * 10_000
        quiet.stroke(t)
        woken.stroke(t)
        for w in range(1, 50):
            woken.wake(t + w * 200)
        quiet.advance_to(t + 49 * 200)
        woken.advance_to(t + 49 * 200)
    assert woken.delivered_to_outlet_nl == pytest.approx(quiet.delivered_to_outlet_nl, rel=1e-12)
    assert woken.stored_in_line_nl == pytest.approx(quiet.stored_in_line_nl, rel=1e-9)
    assert woken.line_pressure_pa(woken.now_ms) == pytest.approx(quiet.line_pressure_pa(quiet.now_ms))
    used = (quiet.battery_percent() - woken.battery_percent()) / 100 * b.capacity_mah * 3.6e6
    assert used == pytest.approx(200 * 49 * b.wake_current_ma * b.wake_duration_ms, rel=1e-6)
    assert woken.last_wake_ms == 1_000 + 199 * 10_000 + 49 * 200
    # a wake-up is an event in time order: nothing may come before it afterwards
    woken.wake(3_000_000)
    assert woken.current_ma() == pytest.approx(b.sleep_current_ua / 1000 + b.wake_current_ma)
    for late in (woken.wake, woken.stroke, woken.advance_to):
        with pytest.raises(ValueError):
            late(2_999_999)
    # unpowered or on the bench supply: no charge, and an unpowered board records no wake-up
    woken.set_external_supply(3300.0)
    before = woken.battery_percent()
    woken.wake(3_000_100)
    assert woken.battery_percent() == before and woken.last_wake_ms == 3_000_100
    woken.power(False)
    woken.wake(3_000_200)
    assert woken.last_wake_ms == 3_000_100


@pytest.mark.parametrize("make", [general_plant, table_plant], ids=["general", "table"])
def test_capture_at_an_offset_fills_only_that_part_with_the_same_readings(
        make: Callable[[int], Plant]) -> None:
    # the board's read_pressure(buf, n, period, start): the rest of a capture goes after its
    # first samples in the same list, as the firmware's supervisor asks after an early look
    at_offset, plain = make(7), make(7)
    for p in (at_offset, plain):
        p.capture(0, 40, [0] * 5, 5)        # the table plant builds its table here
        p.stroke(1_000)
    buf = [-1] * 50
    at_offset.capture(1_040, 40, buf, 30, 20)
    ref = [0] * 30
    plain.capture(1_040, 40, ref, 30)
    assert buf[:20] == [-1] * 20
    assert buf[20:] == ref
    assert len(set(ref)) > 3
