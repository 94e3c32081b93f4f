# itpump: `make demo` and `make test` do all set-up themselves on a fresh machine.
# Set-up = a virtualenv in .venv with the pinned Python packages (pyproject.toml) and the pinned npm
# package that provides the real MicroPython interpreter (package.json / package-lock.json).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
STAMP  := $(VENV)/.itpump-setup

.PHONY: setup test test-fast demo bench fuzz lint typecheck flash clean hil-farm hil-rp2 verify \
        verify-powercut verify-mitigations verify-stateful

ACCEL  := build/accel/STAMP
ACCEL_SRC := hil/pumphil/plant/model.py hil/pumphil/board.py hil/pumphil/flash.py \
             hil/pumphil/accel.py tools/build_accel.py

setup: $(STAMP) node_modules/.itpump-setup $(ACCEL)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet setuptools==80.9.0
	$(PY) -m pip install --quiet --no-build-isolation -e '.[dev]'
	touch $@

# The emulator's typed plant/board/flash compiled with mypyc (pumphil/accel.py): optional, ~10 s;
# without a C compiler the emulator runs as plain Python with identical results.
$(ACCEL): $(STAMP) $(ACCEL_SRC)
	$(PY) tools/build_accel.py

node_modules/.itpump-setup: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The whole suite: core (CPython and real MicroPython), properties, host, emulator, HIL-on-emulator.
# Two pytest workers (pytest-xdist): CI and this project's machines have two cores. loadgroup:
# tests marked xdist_group (tests/rp2: one emulated board per module, its tests in order) stay
# together on one worker; every other test is spread as with the default.
test: setup
	$(PYTEST) tests -n 2 --dist loadgroup

# The edit-run loop: core tests and properties on CPython only (seconds).
test-fast: setup
	$(PYTEST) tests/core tests/properties tests/test_layering.py tests/test_statemodel.py

demo: setup
	$(PY) -m pumphil.demo

bench: setup
	$(PY) bench/run_all.py

# Long checks that print their figures (make test runs a share of each).
verify: verify-powercut verify-mitigations verify-stateful

# Model-based verification: 10,000 random sequences of 50 steps, the unchanged firmware against
# the reference model written from the docs (tests/verify; make test runs 50); prints its counts.
verify-stateful: setup
	ITPUMP_VERIFY_SEQUENCES=10000 ITPUMP_VERIFY_STEPS=50 $(PYTEST) tests/verify/test_stateful.py \
	  -s -rxs -p no:timeout

# The every-write power-cut campaign with a real replay of the day for every cut and torn write
# (make test replays a sample and boots every image).
verify-powercut: setup
	ITPUMP_POWERCUT_REPLAY=all $(PYTEST) tests/emulator/test_powercut_campaign.py --timeout=0

# Every mutation of the mitigation table on a copy of the tree (make test: one per hazard).
verify-mitigations: setup
	$(PY) tests/mitigation_runner.py --all

# Long fuzz of the device-side parser and dispatcher (make test runs the short one).
fuzz: setup
	ITPUMP_FUZZ_EXAMPLES=1000000 $(PYTEST) tests/host/test_fuzz_dispatch.py -p no:timeout

# A labgrid farm on 127.0.0.1:20408 exporting the emulated rig as the place itpump-emu (docs/hil.md);
# then, in another terminal: .venv/bin/pytest tests/hil --rig labgrid://127.0.0.1:20408/itpump-emu
# The HIL suite on the real MicroPython rp2 port in an emulated RP2040 (tests that declare at most
# 30 min of rig time; ~4 min of wall time each on a loaded 2-core machine).
hil-rp2: setup
	$(PYTEST) tests/hil --rig rp2 --rig-report build/hil-rp2 -p no:randomly

hil-farm: setup
	$(PY) -m pumphil.hil.farm --port 20408 --dir build/hil-farm

lint: setup
	$(VENV)/bin/ruff check firmware host hil tests bench

# host and HIL code with the CPython typeshed; the firmware against the MicroPython rp2 stubs
typecheck: setup
	$(VENV)/bin/mypy host/pumphost hil/pumphil
	MYPYPATH=firmware $(VENV)/bin/mypy --custom-typeshed-dir $$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") -p pumpfw -p pumpcore

# Put the firmware on a Pico running MicroPython (PORT=/dev/ttyACM0): compiled with mpy-cross for
# the RP2040 (armv6m), .mpy ABI checked against the board, copied with mpremote, every file's
# sha256 read back on the board, reset, hello checked (docs/hardware.md). Then, once per board:
# .venv/bin/itpump provision --port $(PORT)
PORT ?= /dev/ttyACM0
flash: setup
	$(VENV)/bin/itpump flash --port $(PORT)

clean:
	rm -rf $(VENV) node_modules build *.egg-info
