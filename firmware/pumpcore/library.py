# The drug library the pump enforces (hard limits refuse a program, soft limits need confirmation).
#
# EVERY DEFAULT HERE IS AN EXAMPLE FOR A RESEARCH DEVICE, NOT CLINICAL GUIDANCE (entry.example is
# True for all shipped defaults). Sources and the reasoning per value: docs/prescription.md.
#
# Units: concentration in ug/mL (= ng/uL), daily amounts in ng per 24 h, bolus amounts in ng, time
# in ms, percent as an integer 0..100+. None always means "no such limit in the library" (the rule
# is not applied), never 0. Names are lowercase strings.
#
# Who calls it: pumpcore.prescription.validate (limits, titration, start dose, bolus amount), the
# Pump facade (library=None -> default_library()), the host (to show limits). The library is data
# only; the patient cannot change it and a prescription may only tighten it.

# Sanity maximum concentration for a drug WITHOUT a library entry (clonidine, bupivacaine, ...):
# such a drug is accepted only with explicit hard and soft limits, and any positive concentration
# up to this value (100 mg/mL, above every labelled intrathecal concentration in DOMAIN.md).
UNKNOWN_CONC_MAX_UG_PER_ML = 100000

MS_PER_HOUR = 3600000


class DrugEntry:
    """One library entry. All fields are plain ints (or None where documented) and a name.

    name                   lowercase drug name
    conc_min_ug_per_ml     lowest accepted concentration (inclusive)
    conc_max_ug_per_ml     highest accepted concentration (inclusive)
    soft_ng_per_day        projected daily dose above this needs confirmation (soft limit)
    hard_ng_per_day        projected daily dose above this is refused (hard limit)
    max_bolus_ng           largest amount in ONE bolus (periodic or patient); None = not limited
    step_ng_per_day        largest increase of projected daily dose per program change, absolute;
                           None = no absolute allowance
    step_pct               largest increase in percent of the current projected daily dose;
                           None = no percent allowance.  Allowed increase =
                           max(step_ng_per_day or 0, current * step_pct // 100).  If both are None
                           the drug has no titration-step rule.
    step_interval_ms       minimum time between two increases; None = no interval rule
    start_max_ng_per_day   largest projected daily dose when the drug starts (first program, drug
                           newly added, or current projected dose 0); None = no start rule
    example                True: a shipped default, "example, not clinical guidance"
    """

    def __init__(self, name, conc_min_ug_per_ml, conc_max_ug_per_ml, soft_ng_per_day,
                 hard_ng_per_day, max_bolus_ng=None, step_ng_per_day=None, step_pct=None,
                 step_interval_ms=None, start_max_ng_per_day=None, example=True):
        self.name = name
        self.conc_min_ug_per_ml = conc_min_ug_per_ml
        self.conc_max_ug_per_ml = conc_max_ug_per_ml
        self.soft_ng_per_day = soft_ng_per_day
        self.hard_ng_per_day = hard_ng_per_day
        self.max_bolus_ng = max_bolus_ng
        self.step_ng_per_day = step_ng_per_day
        self.step_pct = step_pct
        self.step_interval_ms = step_interval_ms
        self.start_max_ng_per_day = start_max_ng_per_day
        self.example = example

    def allowed_increase_ng_per_day(self, current_ng_per_day):
        """Largest allowed increase from current_ng_per_day, or None when no step rule applies."""
        if self.step_ng_per_day is None and self.step_pct is None:
            return None
        allowed = 0
        if self.step_ng_per_day is not None:
            allowed = self.step_ng_per_day
        if self.step_pct is not None:
            by_pct = current_ng_per_day * self.step_pct // 100
            if by_pct > allowed:
                allowed = by_pct
        return allowed

    def to_dict(self):
        """Plain-dict form (for the host / protocol). Keys are the attribute names."""
        return {
            "name": self.name,
            "conc_min_ug_per_ml": self.conc_min_ug_per_ml,
            "conc_max_ug_per_ml": self.conc_max_ug_per_ml,
            "soft_ng_per_day": self.soft_ng_per_day,
            "hard_ng_per_day": self.hard_ng_per_day,
            "max_bolus_ng": self.max_bolus_ng,
            "step_ng_per_day": self.step_ng_per_day,
            "step_pct": self.step_pct,
            "step_interval_ms": self.step_interval_ms,
            "start_max_ng_per_day": self.start_max_ng_per_day,
            "example": self.example,
        }


class Library:
    """A set of DrugEntry objects keyed by lowercase name."""

    def __init__(self, entries=()):
        self._entries = {}
        for e in entries:
            self._entries[e.name] = e

    def entry(self, name):
        """The DrugEntry for name, or None (unknown drug: explicit limits required)."""
        if not isinstance(name, str):
            return None
        return self._entries.get(name)

    def names(self):
        """Sorted list of the drug names with an entry."""
        out = list(self._entries.keys())
        out.sort()
        return out

    def to_dict(self):
        """{name: entry dict} for the host."""
        out = {}
        for name in self._entries:
            out[name] = self._entries[name].to_dict()
        return out


def default_library():
    """The shipped example library (example, NOT clinical guidance; see docs/prescription.md)."""
    return Library((
        # Prialt label: 25 and 100 ug/mL; start <= 2.4 ug/day; increase <= 2.4 ug/day at most
        # 2-3 times a week (-> one increase per 48 h); max 19.2 ug/day.  Soft = 80 % of hard.
        # Max bolus: project choice 1.2 ug (half the labelled starting daily dose); ziconotide
        # is labelled for continuous infusion only.
        DrugEntry("ziconotide", 25, 100,
                  soft_ng_per_day=15360, hard_ng_per_day=19200,
                  max_bolus_ng=1200,
                  step_ng_per_day=2400, step_pct=None,
                  step_interval_ms=48 * MS_PER_HOUR,
                  start_max_ng_per_day=2400),
        # Infumorph label: 10 and 25 mg/mL; caution above 20 mg/day -> soft 20 mg/day.
        # Hard 30 mg/day: project choice (1.5 x the caution level).
        # No labelled titration step: project choice +30 %/24 h or +1 mg/day, whichever is larger
        # (the 1 mg/day floor = top of the opioid-naive daily range, so low doses can move).
        # No start rule (tolerant patients start at 1-10 mg/day; the soft limit covers them).
        # Max bolus: project choice 1 mg (top of the opioid-naive daily range).
        DrugEntry("morphine", 10000, 25000,
                  soft_ng_per_day=20000000, hard_ng_per_day=30000000,
                  max_bolus_ng=1000000,
                  step_ng_per_day=1000000, step_pct=30,
                  step_interval_ms=24 * MS_PER_HOUR,
                  start_max_ng_per_day=None),
        # Baclofen (spinal): 50-2000 ug/mL; maintenance up to 800 ug/day -> soft; not to exceed
        # 1000 ug/day -> hard; titrate +10-30 %/24 h -> +30 % per 24 h.  Percent only: a start
        # from zero is governed by the start rule (project choice 300 ug/day = bottom of the
        # maintenance range).  Max bolus: project choice 100 ug (a screening-bolus size).
        DrugEntry("baclofen", 50, 2000,
                  soft_ng_per_day=800000, hard_ng_per_day=1000000,
                  max_bolus_ng=100000,
                  step_ng_per_day=None, step_pct=30,
                  step_interval_ms=24 * MS_PER_HOUR,
                  start_max_ng_per_day=300000),
    ))
