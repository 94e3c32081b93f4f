"""Reference model of the pump written from docs/ (see states.py, dose.py, pump.py)."""
