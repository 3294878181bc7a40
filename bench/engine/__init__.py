"""The engine behind the `hwnas` commands: profiling, validation, searches, supernet
sampling, stand-alone training, predictor evaluation and the result store. It never imports
experiments or reports (tests/test_layers.py).
"""
