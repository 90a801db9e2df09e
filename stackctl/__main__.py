"""``python -m stackctl``."""

from stackctl.cli import run

run()
