"""The engine: worker processes, scheduling, output, signals and deadlines.

It runs an injected item runner and imports nothing from `workflows/`, `runs/` or `cli/`
(`tests/test_layering.py` guards it). `runs/` wires it to the workflows and the keys.
"""
