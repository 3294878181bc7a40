"""Subcommands of `hwnas`; each module defines one click command (or group)."""

from hwnas.bench.commands.agent import agent
from hwnas.bench.commands.data import data
from hwnas.bench.commands.dev import dev
from hwnas.bench.commands.device_bench import device_bench
from hwnas.bench.commands.gpu_check import gpu_check
from hwnas.bench.commands.leaderboard import leaderboard
from hwnas.bench.commands.measure import measure
from hwnas.bench.commands.plot import plot
from hwnas.bench.commands.predictors import predictors
from hwnas.bench.commands.profile import profile, validate_lut
from hwnas.bench.commands.search import search
from hwnas.bench.commands.spaces import spaces
from hwnas.bench.commands.standalone import standalone
from hwnas.bench.commands.supernet import sample, supernet, train
from hwnas.bench.commands.tables import tables

COMMANDS = [spaces, tables, profile, validate_lut, agent, supernet, sample, train, predictors,
            search, leaderboard, standalone, device_bench, measure, gpu_check, plot, data, dev]
