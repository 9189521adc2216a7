"""The LangGraph workflows (lld, issue), their nodes, checkpoints and the item runner."""
