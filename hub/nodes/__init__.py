"""The fleet: node identities and keys, certificates, broker files, and config pushes."""
