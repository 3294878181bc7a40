"""Reports: the Markdown summaries, statistics and plots written from the engine's and the
experiments' results.
"""
