"""Experiments: the boards and studies (leaderboards, the chain board, the device bench, the
predictor studies, development tasks) as configurations run on the engine.
"""
