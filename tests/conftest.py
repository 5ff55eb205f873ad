"""Test-session setup: the same CPU code paths as every stage process (sam4ir.cpu_pins), set before any test module
imports torch, numpy or OpenCV, so in-process results equal the stages' own."""

from sam4ir.cpu_pins import pin_cpu

pin_cpu()
