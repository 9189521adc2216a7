"""Where shared state lives: local (SQLite and files in AGENTOS_HOME), or Postgres for a team.

Each store is an interface (`key_ledger`) with one implementation per place (`local/`); the
rest of agentos does not know which one it has.
"""
