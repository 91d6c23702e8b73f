"""link layer of the node agent."""
