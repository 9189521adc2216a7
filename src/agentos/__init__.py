"""agentos: run LLM design workflows (brief -> issue, issue -> LLD) in parallel, safely."""

__version__ = "0.1.0"
