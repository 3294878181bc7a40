"""The bottom of the stack: what every package may import (registry, capabilities, paths,
atomic writes, locks, logging). It imports nothing from devices, predictors, search or bench."""
