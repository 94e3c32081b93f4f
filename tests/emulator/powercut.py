"""The every-write power-cut campaign (littlefs's test runner cuts power at every program and
erase; this does the same to the pump): a scripted therapy day on the virtual board, a power cut
right before each flash program/erase of it (and each program left torn), each image booted by
the firmware and judged against what the pump had done before the cut.

How an image is made. The day is first run once with the flash chip's journal on
(pumphil/flash.py: FlashChip.journal, on_write), noting at every write what the pump had really
done (strokes the motor made, its RAM ledger, reservoir, counters). The image a cut before write k
leaves is the starting image plus writes 0..k-1 (and, torn, half of write k) applied by the same
FlashChip code: the run is deterministic (virtual time, seeded plant, same commands), so this is
exactly the image a replay of the day with `cut_at = k` leaves. `run_day(cut_at=k)` does such a
replay for real; the tests compare the two for a sample of k, and `make verify` replays every k.
(A replay costs ~0.5 s, most of it the pyserial socket's close; booting an image ~5 ms, most of
it the firmware's boot: the journal is what makes every write affordable in make test.)

What is judged (docs/safety.md boot policy, docs/therapy.md "Resets and accounting"):
- restored: the boot found the state record and counters intact and restored them; the booted
  pump's counters are the record's plus its write-ahead reservation, counted as delivered;
  nothing the motor had done before the cut is missing (strokes, 24-h ledger; the reservoir is
  never overstated); a clinician bolus that would take the drug over its hard limit, counting
  everything delivered before the cut, is refused `dose_limit`.
- safe: the safe state with `state_lost` (the boot policy for a missing or damaged record). Legal
  for the boot policy, but with an atomic save a cut must never cause it: the campaign counts it
  as a failure of the save.
- other: anything else (a crash at boot, a mount failure, a failed self-test, first-boot
  defaults after therapy began, a running pump without its program...).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pumpcore.clock import from_ymd_hms
from pumpfw import board as fw_board
from pumpfw.storage import OK, Storage, device_identity
from pumphil.board import VirtualBoard, VirtualClock
from pumphil.emulator import Emulator
from pumphil.flash import Flash, FlashChip
from pumphil.plant import Plant
from pumphost.client import PumpClient

MIN = 60_000
HOUR = 3_600_000
SEED = 7
DRUG = "clonidine"
CONC_UG_PER_ML = 500
HARD_NG_PER_DAY = 160_000
STROKE_NL = fw_board.STROKE_NL
STROKE_NG = STROKE_NL * CONC_UG_PER_ML // 1000   # drug in one stroke of the campaign's admixture


def campaign_rx() -> dict[str, Any]:
    """Clonidine 500 ug/mL (no library entry, so no library bolus maximum: a clinician bolus can
    reach the hard limit from anywhere in the day), hard limit 160 ug/day. Projected: basal
    8 h x 8 uL/h + 16 h x 12 uL/h = 256 uL = 128 ug, periodic 5 ug, patient 4 x 2 ug: 141 ug
    (over the soft limit, confirmed); the day's clinician bolus adds 5 ug, and the ledger counts
    all of it at +5 % plus the prime's last 7.1 uL (the catheter's uncertainty band): ~157 ug,
    so the guard never holds. Research example, not clinical guidance."""
    return {
        "reservoir": {"capacity_nl": 20_000_000, "fill_nl": 18_000_000,
                      "low_alert_nl": 2_000_000, "empty_nl": 500_000},
        "catheter": {"volume_nl": 150_000},
        "drugs": [{"name": DRUG, "conc_ug_per_ml": CONC_UG_PER_ML,
                   "hard_ng_per_day": HARD_NG_PER_DAY, "soft_ng_per_day": 120_000}],
        "basal": {"steps": [[0, 8_000], [480, 12_000]], "days": None},
        "periodic": [{"times_min": [360], "volume_nl": 10_000, "duration_ms": 600_000}],
        "patient": {"volume_nl": 4_000, "duration_ms": 120_000, "lockout_ms": 3_600_000,
                    "max_per_24h": 4},
    }


# -- the scripted day ---------------------------------------------------------------------------
Command = Callable[[PumpClient], Any]


def _commit(c: PumpClient) -> None:
    review = c.stage(campaign_rx())
    c.commit(review["checksum"], confirm_soft=True)


# (what, a command or the ms to advance)
DAY: tuple[tuple[str, Command | int], ...] = (
    ("set_clock", lambda c: c.set_clock(*from_ymd_hms(2026, 1, 5, 5, 0))),   # Monday 05:00
    ("commit", _commit),
    ("prime", lambda c: c.prime(150_000)),                # 9 min at 1 mL/h: 600 strokes
    ("priming", 10 * MIN),
    ("start", lambda c: c.start()),
    ("basal, periodic 06:00", 2 * HOUR),
    ("patient bolus", lambda c: c.patient_bolus()),
    ("basal", 3 * HOUR),
    ("clinician bolus", lambda c: c.clinician_bolus(10_000, 10 * MIN)),
    ("bolus, basal", HOUR),
    ("suspend", lambda c: c.suspend(60)),
    ("suspended", 10 * MIN),
    ("refill", lambda c: c.refill(18_000_000)),
    ("resume", lambda c: c.resume()),
    ("basal", 2 * HOUR),
    ("patient bolus", lambda c: c.patient_bolus()),
    ("rest of the day", 15 * HOUR + 40 * MIN),
)
CHUNK_MS = 30 * MIN       # advances are split so that a replay stops soon after its cut


@dataclass(frozen=True)
class Truth:
    """What the pump had done when a flash write started (before any cut)."""
    made: int                 # strokes the motor made (the plant's count)
    counted: int              # strokes the pump had counted (it counts a step's strokes, writes
                              # a record if they go beyond its reservation, then makes them)
    ledger_ng: int            # its RAM rolling-24-h amount of DRUG (0 before programming)
    reservoir_nl: int | None  # its RAM reservoir estimate (None before programming)
    step: str                 # the script step that was running
    stroke_ledger_ng: int = STROKE_NG   # the most one stroke adds to the ledger

    def delivered_ledger_ng(self) -> int:
        """The RAM ledger less the most the counted strokes not yet made can have added to it:
        no more than the ledger holds for what the patient had received."""
        return self.ledger_ng - (self.counted - self.made) * self.stroke_ledger_ng

    def reservoir_left_nl(self) -> int | None:
        """The reservoir the motor had really left (the unmade strokes have not drawn yet)."""
        if self.reservoir_nl is None:
            return None
        return self.reservoir_nl + (self.counted - self.made) * STROKE_NL


@dataclass
class Run:
    base: bytes                                        # the flash before the day
    journal: list[tuple[int, int, bytes]] = field(default_factory=list)
    truths: list[Truth] = field(default_factory=list)
    image: bytes = b""                                 # the flash when the run ended or was cut
    cut: bool = False

    @property
    def programs(self) -> int:
        return sum(1 for _, off, _ in self.journal if off >= 0)


def make_base(dir_: Path) -> None:
    """A provisioned pump's state directory (flash image, identity, keys), booted once."""
    with Emulator(state_dir=dir_, seed=SEED):
        pass


def run_day(base_dir: Path, work: Path, *, cut_at: int = -1, torn: bool = False,
            commit_each_write: bool = False, journal: bool = False) -> Run:
    """Play DAY on a copy of base_dir (same device, keys and flash). cut_at >= 0: the power goes
    right before that write (torn: leaving it half programmed) and the run stops there.
    journal: keep every write and the Truth when it started."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base_dir, work)
    emu = Emulator(state_dir=work, seed=SEED)
    emu.flash.commit_each_write = commit_each_write
    chip = emu.flash.chip
    run = Run(base=emu.flash.image_bytes())
    step = ["boot"]
    if journal:
        chip.journal = run.journal
        chip.on_write = lambda k: run.truths.append(_truth(emu, step[0]))
    chip.cut_at = cut_at
    chip.torn = torn
    emu.start()
    client = PumpClient.open(emu.serial_url, key_file=emu.key_file)
    # request ids are random per client and the pump logs them: a fixed prefix makes every run
    # of the day write the same bytes, so a replay can be compared with the recording
    client._id_prefix = "5eed"
    try:
        for name, what in DAY:
            if chip.cut:
                break
            step[0] = name
            if isinstance(what, int):
                left = what
                while left > 0 and not chip.cut:
                    emu.advance(min(left, CHUNK_MS))
                    left -= CHUNK_MS
            else:
                what(client)
        run.cut = chip.cut
        run.image = chip.cut_image if chip.cut_image is not None else emu.flash.image_bytes()
    finally:
        client.close()
        emu.close()
    return run


def _truth(emu: Emulator, step: str) -> Truth:
    app = emu.board.app
    made = emu.plant.strokes_ok + emu.plant.strokes_failed
    if app is None:
        return Truth(made, made, 0, None, step)
    pump = app.pump
    if DRUG not in pump.slot_names:
        return Truth(made, pump.strokes_total, 0, None, step)
    res = pump.reservoir
    # the ledger counts a stroke's drug at the top of the mechanism's accuracy (+tolerance_pct)
    per_stroke = STROKE_NG + (STROKE_NG * pump.tolerance_pct + 99) // 100
    return Truth(made, pump.strokes_total, pump.ledger.total(pump.slot_names.index(DRUG)),
                 None if res is None else res.remaining_nl, step, per_stroke)


def images(run: Run) -> Iterator[tuple[int, bool, bytes]]:
    """(k, torn, image) for every write k of a journaled run: the flash a cut right before write
    k leaves, then (programs only) the flash a cut in the middle of it leaves. Made by the same
    FlashChip code a replay with cut_at = k runs."""
    chip = FlashChip(bytearray(run.base))
    for k, (block, off, data) in enumerate(run.journal):
        yield k, False, bytes(chip.buffer)          # everything before write k, nothing of it
        chip.cut_at = k
        chip.torn = True
        if off >= 0:
            chip.prog(None, block, off, data)
            assert chip.cut_image is not None
            yield k, True, chip.cut_image
        else:
            chip.erase(None, block)


# -- booting an image and judging it -------------------------------------------------------------
RESTORED, SAFE, OTHER = "restored", "safe", "other"
# the state a restored pump boots into, by the state in its record (docs/safety.md boot policy:
# running therapy resumes, nothing else starts by itself; an interrupted prime is not resumed)
BOOTS_INTO = {None: {"stopped"}, "stopped": {"stopped"}, "priming": {"stopped"},
              "running": {"running"}, "suspended": {"running"}, "alarm_stop": {"alarm_stop"},
              "safe_state": {"safe_state"}}


@dataclass
class Outcome:
    kind: str
    problems: list[str]
    lost_strokes: int = 0             # strokes made before the cut less those counted after boot
                                      # (negative: strokes presumed that were not made)
    limit_check: str | None = None    # the over-the-limit bolus' refusal reason (None: not tried)


class Booter:
    """Boots images with the unchanged firmware on a fresh virtual board (one plant for all)."""

    def __init__(self) -> None:
        self.plant = Plant(seed=SEED)

    def boot(self, image: bytes, truth: Truth) -> Outcome:
        try:
            flash = Flash(None, data=image)
        except Exception as exc:  # noqa: BLE001 - a mount failure is an outcome
            return Outcome(OTHER, [f"mount failed: {exc!r}"])
        identity = device_identity(flash)
        key = identity[1] if identity is not None else None
        code, rec = Storage(flash, key).load("/state.json")
        board = VirtualBoard(self.plant, flash, VirtualClock(0), lambda data, link: None)
        try:
            board.power_on()
        except BaseException as exc:  # noqa: BLE001 - a crash at boot is an outcome
            return Outcome(OTHER, [f"boot raised {exc!r}"])
        app = board.app
        assert app is not None
        report = app.boot_report
        st = app.pump.status()
        alarms = [a[0] for a in st["alarms"]]
        if report["self_test"] is not None:
            return Outcome(OTHER, [f"self-test failed: {report['self_test']}"])
        if report["state"] is not None:
            if st["state"] == "safe_state" and "state_lost" in alarms:
                return Outcome(SAFE, [f"state lost: {report['state']}"])
            return Outcome(OTHER, [f"record unusable ({report['state']}) but {st['state']}"])
        assert code == OK
        return self._judge_restored(app, rec, st, truth)

    def _judge_restored(self, app: Any, rec: dict[str, Any], st: dict[str, Any],
                        truth: Truth) -> Outcome:
        # docs/therapy.md "Resets and accounting": the record reserves the strokes the pump may
        # make before its next record, and a boot after an unexpected reset counts them as
        # delivered; so no stroke made before a cut is ever missing after it
        problems: list[str] = []
        snap = rec.get("pump")           # None: the factory record
        reserve = snap["reserve"] if snap else 0
        rec_strokes = snap["counters"][0] if snap else 0
        if st["strokes"] != rec_strokes + reserve:
            problems.append(f"strokes {st['strokes']} != record {rec_strokes} + reserved {reserve}")
        rec_presumed = snap["presumed"][0] if snap else 0
        if st["presumed"]["strokes"] != rec_presumed + reserve:
            problems.append(f"presumed {st['presumed']['strokes']} != record {rec_presumed} "
                            f"+ reserved {reserve}")
        rec_state = snap["state"] if snap else None
        if st["state"] not in BOOTS_INTO.get(rec_state, set()):
            problems.append(f"record state {rec_state} booted into {st['state']}")
        rec_program = snap["rx_review"]["checksum"] if snap and snap["rx_review"] else None
        if st["program"] != rec_program:
            problems.append(f"program {st['program']} != record {rec_program}")
        lost = truth.made - st["strokes"]
        if lost > 0:
            problems.append(f"{lost} strokes made before the cut are not counted")
        ledger = st["rolling_24h_ng"].get(DRUG, 0)
        delivered = truth.delivered_ledger_ng()
        if ledger < delivered:
            problems.append(f"24-h ledger {ledger} ng < {delivered} ng delivered before the cut")
        left = truth.reservoir_left_nl()
        if left is not None and st["reservoir_nl"] is not None and st["reservoir_nl"] > left:
            problems.append(f"reservoir {st['reservoir_nl']} nL > {left} nL left before the cut")
        check = None
        if st["state"] == "running":
            # the smallest bolus that takes the drug over its hard limit, counting what was
            # delivered before the cut
            headroom = HARD_NG_PER_DAY - delivered
            volume = max(1, (headroom + 1) * 1000 // CONC_UG_PER_ML + 1)
            code, _ = app.pump.clinician_bolus(volume, 10 * MIN)
            check = code
            if code == "ok":
                problems.append(f"a {volume} nL bolus over the hard limit was accepted")
        return Outcome(RESTORED if not problems else OTHER, problems, lost, check)


@dataclass
class Tally:
    writes: int = 0
    programs: int = 0
    booted: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: {RESTORED: 0, SAFE: 0, OTHER: 0})
    limit_checks: dict[str, int] = field(default_factory=dict)
    max_lost: int = 0
    max_presumed: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, k: int, torn: bool, truth: Truth, out: Outcome) -> None:
        self.booted += 1
        self.kinds[out.kind] += 1
        self.max_lost = max(self.max_lost, out.lost_strokes)
        self.max_presumed = max(self.max_presumed, -out.lost_strokes)
        if out.limit_check is not None:
            self.limit_checks[out.limit_check] = self.limit_checks.get(out.limit_check, 0) + 1
        if out.kind != RESTORED:
            self.failures.append(f"write {k}{' torn' if torn else ''} during {truth.step!r}: "
                                 + "; ".join(out.problems))

    def line(self, label: str) -> str:
        return (f"{label}: {self.writes} writes ({self.programs} programs), {self.booted} images "
                f"booted: {self.kinds[RESTORED]} restored, {self.kinds[SAFE]} safe state, "
                f"{self.kinds[OTHER]} other; over-limit bolus refused {self.limit_checks}; "
                f"most strokes lost {self.max_lost}, presumed but not made {self.max_presumed}")


def campaign(run: Run, every: int = 1) -> Tally:
    """Boot the image of every `every`-th write of a journaled run (cut and torn)."""
    booter = Booter()
    tally = Tally(writes=len(run.journal), programs=run.programs)
    for k, torn, image in images(run):
        if k % every:
            continue
        tally.add(k, torn, run.truths[k], booter.boot(image, run.truths[k]))
    return tally


def record_text(image: bytes) -> str:
    """The state record on an image (for messages)."""
    flash = Flash(None, data=image)
    identity = device_identity(flash)
    code, rec = Storage(flash, identity[1] if identity else None).load("/state.json")
    return f"{code} {json.dumps(rec)[:200]}"
