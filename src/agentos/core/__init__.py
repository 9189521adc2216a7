"""The base every other room stands on: errors, the environment, paths, redaction,
safe JSON and atomic files, durations and retry hints, settings, and the rules for
reading files (workspace and home) and naming items. Imports nothing above it."""
