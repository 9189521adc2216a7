"""Runs: the one place that wires the engine, the workflows and the keys together. A batch
(`batch`) or a single item (`single`), each item's record (`item_record`), the summary and
its table (`summary`), spending (`spend`), a run still going (`progress`), and reading and
cleaning past runs and kept checkpoints (`history`, `kept_checkpoints`)."""
