"""Thin command-line layer: parse flags -> validated RunConfig -> run."""
