"""hw layer of the node agent."""
