"""The LangGraph workflows (lld, issue), their nodes, checkpoints and item execution."""
