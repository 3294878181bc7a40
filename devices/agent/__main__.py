"""`python -m hwnas.devices.agent`: run the measurement agent (see command.py)."""

from .command import main

main()
