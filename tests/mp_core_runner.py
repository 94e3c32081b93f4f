# Runs the plain-assert core tests under a real MicroPython interpreter.
# Executed by pumphil.mpy_runtime (see tests/test_core_on_micropython.py), not by pytest.
# Discovers /tests/core/test_*.py, calls every function named test_* that takes no argument, and
# prints one line per test: "PASS module.name" or "FAIL module.name: ExcType: message",
# then the closing line "N passed, N failed".
import os
import sys

sys.path.append("/tests/core")
passed = 0
failed = 0
only = ARGV[1] if len(ARGV) > 1 else None  # noqa: F821 (ARGV is set by the runner)
for fname in sorted(os.listdir("/tests/core")):
    if not (fname.startswith("test_") and fname.endswith(".py")):
        continue
    modname = fname[:-3]
    if only and modname != only:
        continue
    try:
        mod = __import__(modname)
    except Exception as e:  # an import failure fails the whole module, loudly
        failed += 1
        print("FAIL %s: import: %s: %s" % (modname, type(e).__name__, e))
        sys.print_exception(e)
        continue
    for name in sorted(dir(mod)):
        if not name.startswith("test_"):
            continue
        fn = getattr(mod, name)
        if not callable(fn):
            continue
        try:
            fn()
            passed += 1
            print("PASS %s.%s" % (modname, name))
        except Exception as e:
            failed += 1
            print("FAIL %s.%s: %s: %s" % (modname, name, type(e).__name__, e))
            sys.print_exception(e)
print("%d passed, %d failed" % (passed, failed))
