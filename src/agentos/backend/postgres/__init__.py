"""The Postgres backend: a team's shared state, for every machine that names the same server."""
