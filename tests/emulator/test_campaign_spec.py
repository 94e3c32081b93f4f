"""Campaign files (pumphil.campaign.spec): distributions with bounds, per-run seeds derived from one
campaign seed, the run layout, every problem named at once, and the scenario file of a run."""

from __future__ import annotations

import math
from pathlib import Path

import campaign_helpers as H
import pytest
from pumphil import scenario
from pumphil.campaign import spec as S
from pumphil.campaign.spec import CampaignError

HEAD = f"""
name = "c"
seed = 5
[[program]]
prescription = "{H.RX}"
"""


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(CampaignError) as e:
        S.loads(text, "bad.toml")
    assert str(e.value).startswith("bad.toml: ")
    return e.value.problems


def test_seed_derivation_is_pinned_and_independent_of_layout() -> None:
    # a fixed function of (campaign seed, class name, index, purpose): the same on every machine
    # and Python version (SHA-256), so results tables can be compared across them
    seeds = {S.derive_seed(11, c, j, p) for c in ("a", "b") for j in range(50)
             for p in ("draw", "plant")}
    assert len(seeds) == 200 and all(0 <= s < 2 ** 62 for s in seeds)
    c1 = S.loads(H.SMALL)
    # another class added in front: the existing classes' runs keep their seeds and draws
    c2 = S.loads(H.SMALL.replace('[[fault]]\nname = "none"', '[[fault]]\nname = "extra"\n'
                                 'kind = "none"\nruns = 4\n\n[[fault]]\nname = "none"', 1))
    assert c2.runs == c1.runs + 4
    for k in range(c1.runs):
        a, b = S.draw(c1, k), S.draw(c2, k + 4)
        assert (a.fault_class, a.seed, a.plant, a.onset_ms) == (b.fault_class, b.seed, b.plant,
                                                               b.onset_ms)


def test_pinned_seed_values() -> None:
    # pinned: a change of the derivation changes every campaign's runs (and must be deliberate)
    assert S.derive_seed(11, "none", 0, "draw") == 4138510440553299928
    assert S.derive_seed(11, "none", 0, "plant") == 3070519498520585213


def test_run_layout_classes_in_order_programs_cycled() -> None:
    text = H.SMALL.replace('[[program]]\nname = "morphine"', '[[program]]\nname = "p2"\n'
                           f'prescription = "{H.RX}"\n\n[[program]]\nname = "morphine"')
    c = S.loads(text)
    assert c.runs == 8
    got = [(S.draw(c, k).fault_class, S.draw(c, k).program) for k in range(c.runs)]
    assert got[:4] == [("none", "p2"), ("none", "morphine"), ("complete occlusion", "p2"),
                       ("complete occlusion", "morphine")]
    assert [c.locate(k)[1] for k in (0, 1, 2, 7)] == [0, 1, 0, 1]
    with pytest.raises(IndexError):
        c.locate(8)


def test_draws_are_deterministic_bounded_and_per_minute_rates_are_whole() -> None:
    c = S.loads(H.SMALL)
    for k in range(c.runs):
        a, b = S.draw(c, k), S.draw(c, k)
        assert a == b
        assert 900 <= a.plant["csf.baseline_pa"] <= 1800
        assert 0.15 <= a.plant["tau_s"] <= 0.6
        bpm = a.plant["csf.cardiac_hz"] * 60
        assert abs(bpm - round(bpm)) < 1e-9 and 50 <= round(bpm) <= 120
        if a.kind == "none":
            assert a.onset_ms is None and a.duration_ms == 3 * 3_600_000
        else:
            assert 40 * 60_000 <= a.onset_ms <= 90 * 60_000 and a.onset_ms % 1000 == 0
            assert a.duration_ms == a.onset_ms + 30 * 60_000
    assert "tissue_pressure_pa" in S.draw(c, 4).plant and "leak_factor" in S.draw(c, 6).plant
    assert "leak_factor" not in S.draw(c, 4).plant


def test_distributions_by_inverse_cdf() -> None:
    def d(t: str) -> S.Distribution:
        c = S.loads(HEAD + f'[[fault]]\nkind = "none"\nruns = 1\n[plant]\ntau_s = {t}\n')
        return c.plant["tau_s"]

    u = d('{ dist = "uniform", min = 0.2, max = 0.4 }')
    assert [u.draw(q) for q in (0.0, 0.5)] == [0.2, 0.3]
    n = d('{ dist = "normal", mean = 0.3, sd = 0.05, min = 0.1, max = 0.5 }')
    assert n.draw(0.5) == pytest.approx(0.3) and n.draw(0.0) == pytest.approx(0.1, abs=1e-3)
    t = d('{ dist = "normal", mean = 0.3, sd = 1.0, min = 0.25, max = 0.35 }')   # truncated
    assert all(0.25 <= t.draw(q / 10) <= 0.35 for q in range(10))
    ln = d('{ dist = "lognormal", median = 0.3, gsd = 1.5, min = 0.01, max = 10 }')
    assert ln.draw(0.5) == pytest.approx(0.3, rel=1e-4)
    lu = d('{ dist = "loguniform", min = 0.1, max = 10 }')
    assert lu.draw(0.5) == pytest.approx(1.0)
    tri = d('{ dist = "triangular", min = 0.1, mode = 0.2, max = 0.5 }')
    assert tri.draw(0.25) == pytest.approx(0.2, rel=1e-4)          # F(mode) = 1/4
    ch = d('{ dist = "choice", values = [0.2, 0.3], weights = [3, 1] }')
    assert [ch.draw(q) for q in (0.0, 0.74, 0.76)] == [0.2, 0.2, 0.3]
    st = d('{ dist = "uniform", min = 0.2, max = 0.4, step = 0.1 }')
    assert st.draw(0.74) == pytest.approx(0.3)
    assert d('{ dist = "constant", value = 0.25 }').draw(0.9) == 0.25
    assert all(math.isfinite(n.draw(q / 100)) for q in range(100))


def test_every_problem_named_at_once() -> None:
    got = problems(f"""
seed = -1
colour = 1
[[program]]
prescription = "{H.RX}"
[plant]
tau = {{ dist = "uniform", min = 1, max = 2 }}
tau_s = {{ dist = "normal", mean = 0.3, sd = 0.1 }}
noise_sigma_pa = {{ dist = "uniform", min = 10, max = 5000 }}
stroke_bias = {{ dist = "gamma", k = 1 }}
[[fault]]
kind = "occlusion"
severity = "half"
runs = 2.5
[[fault]]
kind = "none"
runs = 1
onset = {{ dist = "uniform", min = "1h", max = "2h" }}
""")
    fields = [f for f, _ in got]
    for f in ("seed", "colour", "plant.tau", "plant.tau_s.min", "plant.tau_s.max",
              "plant.noise_sigma_pa", "plant.stroke_bias.dist", "fault[0].runs",
              "fault[0].severity", "fault[0].onset", "fault[1].onset"):
        assert f in fields, (f, got)
    why = dict(got)
    assert "unknown plant figure" in why["plant.tau"]
    assert "leave the plant's range" in why["plant.noise_sigma_pa"]
    assert "bounds keep every draw physical" in why["plant.tau_s.min"]


def test_prescription_problems_and_missing_sections() -> None:
    got = problems('seed = 1\n[[program]]\nprescription = "nope.toml"\n')
    assert [f for f, _ in got] == ["program[0].prescription", "fault"]
    got = problems('seed = 1\n[[fault]]\nkind = "none"\nruns = 1\n[[program]]\n'
                   '[program.prescription]\nreservoir = 3\n')
    assert got and all(f.startswith("program[0].prescription") for f, _ in got)


def test_scenario_file_of_a_run_is_the_run(tmp_path: Path) -> None:
    c = S.loads(H.SMALL, "small.toml")
    for k in (0, 2, 5, 7):
        s = S.draw(c, k)
        text = S.scenario_text(c, s)
        assert text.startswith("# Campaign 'test campaign'") and f"run {k}" in text
        path = tmp_path / f"run-{k}.toml"
        path.write_text(text)
        from_file = scenario.load(path)
        ran = S.scenario_for(c, s)
        # the file `itpump simulate` reads and the scenario the campaign runs are the same
        assert (from_file.duration_ms, from_file.seed, from_file.plant, from_file.rx,
                from_file.events, from_file.start_time) == \
            (ran.duration_ms, ran.seed, ran.plant, ran.rx, ran.events, ran.start_time)
        assert from_file.seed == s.seed and from_file.plant == s.plant
    occl = scenario.load(tmp_path / "run-2.toml")
    assert [(e.action, e.params) for e in occl.events] == [("occlusion",
                                                           {"severity": "complete"})]


def test_resolved_campaign_is_self_contained_with_the_same_digest(tmp_path: Path) -> None:
    c = S.load(H.write_small(tmp_path))
    (tmp_path / "resolved.toml").write_text(c.resolved_text())
    again = S.load(tmp_path / "resolved.toml")
    assert again.digest == c.digest and again.runs == c.runs
    assert S.draw(again, 5) == S.draw(c, 5)
    other = S.loads(H.SMALL.replace("seed = 11", "seed = 12"))
    assert other.digest != c.digest


def test_example_campaigns_parse() -> None:
    examples = sorted((H.ROOT / "docs" / "examples").glob("campaign-*.toml"))
    assert [p.name for p in examples] == ["campaign-detectors.toml"]
    c = S.load(examples[0])
    assert c.runs == 1000 and [f.kind for f in c.faults] == ["none", "occlusion", "occlusion",
                                                           "dislodgement", "leak"]
    assert {p.band for p in c.programs} == {"150-600"}
    s = S.draw(c, 999)
    assert s.fault_class == "slow leak" and 2 <= s.plant["leak_factor"] <= 40
