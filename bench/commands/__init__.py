"""Subcommands of `hwnas`; each module defines one click command (or group)."""

from bench.commands.agent import agent
from bench.commands.leaderboard import leaderboard
from bench.commands.predictors import predictors
from bench.commands.profile import profile, validate_lut
from bench.commands.search import search
from bench.commands.spaces import spaces
from bench.commands.standalone import standalone
from bench.commands.supernet import sample, supernet, train
from bench.commands.tables import tables

COMMANDS = [spaces, tables, profile, validate_lut, agent, supernet, sample, train, predictors,
            search, leaderboard, standalone]
