"""sim layer of the node agent."""
