"""Measure blocks and whole networks on real hardware through ONNX; write latency, energy and
memory tables. Backends import lazily: a machine without a GPU or TensorRT imports all of this."""
