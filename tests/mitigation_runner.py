"""Applies the mutations of tests/mitigations.py to temporary copies of the tree and runs the
tests each one names there, in a subprocess: every named test must fail with the mutation and pass
without it. The working tree is only read.

    python tests/mitigation_runner.py [--all | NAME ...]     (make verify: --all)

The copy holds firmware/, host/, hil/, tests/, docs/ (scenario examples), README.md, pyproject.toml
and the compiled emulator (build/accel; pumphil.accel uses it only while it matches the copy's
sources, so a mutation of a compiled module runs interpreted). PYTHONPATH puts the copy's packages
before the editable install.
Hypothesis runs derandomized with a fixed budget, so a run is reproducible.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mitigations import MUTATIONS, Mutation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TREE = ("firmware", "host", "hil", "tests", "docs", "README.md", "pyproject.toml", "build/accel")
FUZZ_EXAMPLES = "4000"        # the fuzz properties' budget in the copies (make test: 104,000)
# A pytest plugin written into each copy: hypothesis does not shrink there (a failing example is
# all the runner needs; shrinking one took minutes). Tests that set their own phases keep them.
PLUGIN = "itpump_mutant_profile"
PLUGIN_SOURCE = """from hypothesis import Phase, settings
settings.register_profile("mutant", phases=(Phase.explicit, Phase.reuse, Phase.generate))
settings.load_profile("mutant")
"""


class MutationError(Exception):
    """The mutation cannot be applied or its tests cannot be run: a broken table row."""


@dataclass
class Verdict:
    name: str
    failed: set[str] = field(default_factory=set)      # named tests that failed
    passed: set[str] = field(default_factory=set)      # named tests that passed
    seconds: float = 0.0
    output: str = ""


def copy_tree(dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache", "stage", "tmp")
    for rel in TREE:
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, dst / rel, ignore=ignore)
        elif src.exists():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    (dst / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE)


def apply(root: Path, m: Mutation) -> None:
    for e in m.edits:
        path = root / e.path
        text = path.read_text()
        n = text.count(e.old)
        if n != 1:
            raise MutationError(f"{m.name}: the text to replace occurs {n} times in {e.path}")
        path.write_text(text.replace(e.old, e.new))


def run_tests(root: Path, tests: list[str], label: str) -> Verdict:
    """Run `tests` (path::name, every parametrization) in the tree at root; outcome per test."""
    xml = root / f"junit-{label}.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(root / p) for p in ("firmware", "host", "hil", "."))
    env["ITPUMP_HOME"] = str(root / "itpump-home")
    env["ITPUMP_FUZZ_EXAMPLES"] = FUZZ_EXAMPLES
    env.pop("ITPUMP_POWERCUT_REPLAY", None)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", PLUGIN,
         "--hypothesis-seed=0", f"--junitxml={xml}", "--timeout=600", *tests],
        cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    v = Verdict(label, seconds=time.perf_counter() - t, output=proc.stdout[-3000:] + proc.stderr[-2000:])
    if not xml.exists():
        raise MutationError(f"{label}: pytest produced no report\n{v.output}")
    cases: dict[str, list[bool]] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        cls, name = case.get("classname", ""), case.get("name", "")
        node = cls.replace(".", "/") + ".py::" + name.split("[")[0]
        bad = case.find("failure") is not None or case.find("error") is not None
        cases.setdefault(node, []).append(bad)
    for test in tests:
        if test not in cases:
            raise MutationError(f"{label}: {test} was not run (collection failed?)\n{v.output}")
        (v.failed if any(cases[test]) else v.passed).add(test)
    return v


def check(m: Mutation, work: Path) -> Verdict:
    """Apply m to a fresh copy under work and run its tests: the verdict says which failed."""
    root = work / m.name
    copy_tree(root)
    try:
        apply(root, m)
        return run_tests(root, list(m.tests), m.name)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def baseline(mutations: list[Mutation], work: Path) -> Verdict:
    """Every test the mutations name, on an unmutated copy."""
    root = work / "unmutated"
    copy_tree(root)
    try:
        tests = sorted({t for m in mutations for t in m.tests})
        return run_tests(root, tests, "unmutated")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="mutation names (default: the quick ones)")
    ap.add_argument("--all", action="store_true", help="every mutation of the table")
    args = ap.parse_args(argv)
    known = {m.name: m for m in MUTATIONS}
    if args.all:
        chosen = list(MUTATIONS)
    elif args.names:
        chosen = [known[n] for n in args.names]
    else:
        chosen = [m for m in MUTATIONS if m.quick]
    bad = 0
    with tempfile.TemporaryDirectory(prefix="itpump-mutants-") as tmp:
        work = Path(tmp)
        base = baseline(chosen, work)
        print(f"unmutated: {len(base.passed)} tests pass, {len(base.failed)} fail ({base.seconds:.0f} s)")
        for t in sorted(base.failed):
            print(f"  FAILS UNMUTATED {t}")
            bad += 1
        for m in chosen:
            try:
                v = check(m, work)
            except MutationError as exc:
                bad += 1
                print(f"{m.hazard:4} {m.name:38} BROKEN: {exc}")
                continue
            ok = not v.passed
            bad += 0 if ok else 1
            print(f"{m.hazard:4} {m.name:38} {'killed' if ok else 'SURVIVED'}: "
                  f"{len(v.failed)}/{len(m.tests)} tests fail ({v.seconds:.0f} s)")
            for t in sorted(v.passed):
                print(f"       still passes: {t}")
    hazards = sorted({m.hazard for m in chosen}, key=lambda h: int(h[1:]))
    print(f"{len(chosen)} mutations over {len(hazards)} hazards: "
          f"{len(chosen) - bad if bad <= len(chosen) else 0} killed, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
