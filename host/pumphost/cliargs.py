"""argparse value types shared by the itpump subcommands."""

from __future__ import annotations

import argparse


def positive_float(text: str) -> float:
    """A number > 0 (seconds, a speed factor); anything else is a usage error naming it."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return v
