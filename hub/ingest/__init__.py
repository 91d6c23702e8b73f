"""What arrives from the nodes: validated, batched and committed by one writer, then receipted."""
