"""The every-write power-cut campaign (issue 10, item 5; the method is in powercut.py): a scripted
therapy day, a power cut right before every flash program and erase of it and in the middle of
every program (a torn page), every image booted by the unchanged firmware: always the last record
restored with its write-ahead reservation counted, never a stroke made before the cut missing
from the counters or the 24-h ledger, never the reservoir overstated, never a bolus over the hard
limit accepted.

Two flash behaviours: littlefs as the Pico's MicroPython uses it (a file is committed when it is
closed), and the same flash committing every file write at once, as a filesystem without
copy-on-write files (FAT) does. The firmware's save (temporary file, then rename) must survive
both; an in-place save survives only the first, and the second campaign fails for it.

ITPUMP_POWERCUT_REPLAY=all (make verify) replays the day for real for every write instead of a
sample, proving every image the campaign boots is the image a cut leaves.
"""

from __future__ import annotations

import os
from pathlib import Path

import powercut as P
import pytest

MODES = {"littlefs": False, "commit_each_write": True}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("powercut") / "base"
    P.make_base(d)
    return d


@pytest.fixture(scope="module")
def recordings(base: Path) -> dict[str, P.Run]:
    return {mode: P.run_day(base, base.parent / f"rec-{mode}", journal=True,
                            commit_each_write=each)
            for mode, each in MODES.items()}


@pytest.mark.parametrize("mode", MODES)
def test_every_write_cut_or_torn_boots_the_last_record_within_the_bounds(
        recordings: dict[str, P.Run], mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    run = recordings[mode]
    assert not run.cut and run.truths[-1].step == P.DAY[-1][0]    # the whole day was played
    assert len(run.truths) == len(run.journal)
    tally = P.campaign(run)
    with capsys.disabled():
        print("\n" + tally.line(f"power-cut campaign, {mode}"))
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert tally.kinds[P.RESTORED] == tally.booted == len(run.journal) + run.programs
    # the campaign covers the day: writes in every command and a cut in every phase
    steps = {t.step for t in run.truths}
    assert {name for name, what in P.DAY if not isinstance(what, int)} <= steps
    # cuts fall between records, where only the reservation accounts for the strokes made since
    # the last one (counted as delivered whether made or not); and on every running image it
    # tried a bolus over the limit that a pump which had lost part of its ledger would give
    assert tally.max_presumed > 0
    assert tally.limit_checks.get("dose_limit", 0) > len(run.journal) // 2
    assert set(tally.limit_checks) == {"dose_limit"}


@pytest.mark.parametrize("mode", MODES)
def test_the_images_booted_are_what_a_replay_with_a_cut_leaves(
        base: Path, recordings: dict[str, P.Run], mode: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    run = recordings[mode]
    n = len(run.journal)
    if os.environ.get("ITPUMP_POWERCUT_REPLAY") == "all":
        cuts = None
    else:    # a spread sample: the first write, the last, torn and untorn ones between
        cuts = {(k, i % 2 == 1 and run.journal[k][1] >= 0)
                for i, k in enumerate(i * (n - 1) // 5 for i in range(6))}
    replayed = 0
    for k, torn, image in P.images(run):
        if cuts is not None and (k, torn) not in cuts:
            continue
        replay = P.run_day(base, base.parent / "replay", cut_at=k, torn=torn,
                           commit_each_write=MODES[mode])
        assert replay.cut, (k, torn)
        assert replay.image == image, (k, torn, P.record_text(replay.image))
        replayed += 1
    assert replayed == (len(cuts) if cuts is not None else n + run.programs)
    with capsys.disabled():
        print(f"\npower-cut replays, {mode}: {replayed} cuts replayed, every image identical")
