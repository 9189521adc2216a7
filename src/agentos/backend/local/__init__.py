"""The local backend: SQLite files in AGENTOS_HOME, shared by every run of one machine."""
