"""The network's precisions, by name (importing this module does not import torch; the CLI's choices).

fp32 runs the weights as they are, int8 the model's INT8 build (core.inference.quantized), and auto, the CLI's
default, int8 where that build runs (on the CPU, with OpenVINO or ONNX Runtime, built from these weights:
quantized.auto_int8), else fp32. A saved file and a report record the precision that ran, never auto.
"""
from __future__ import annotations

PRECISIONS = ("fp32", "int8")  # what runs: the weights as they are, or their INT8 build
AUTO = "auto"
PRECISION_CHOICES = (AUTO, *PRECISIONS)  # what may be asked for
