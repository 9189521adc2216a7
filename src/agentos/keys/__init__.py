"""Keys: where they come from (`sources`), whether each is usable now (`pool`, `state`:
cool-downs, quotas, rejections, one pool per provider in `pools`), and when each may be
used next (`key_budget`, `budget_book`, the permit protocol in `permit_client` and
`permit_server`, the worker's `paced_provider`, wired by `pacing`).

Below the workflows and the engine: it imports only the base modules and `llm`.
"""
