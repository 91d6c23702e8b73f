"""roles layer of the node agent."""
