"""`agentos dashboard`: a local web page of runs, their timelines and key pools (issue 24, ADR 0014).

Ranks above `runs` (it reads run folders through `runs` and the key ledger through `keys`)
and below `cli`. Needs the `dashboard` extra (Starlette, uvicorn, Jinja2).
"""
