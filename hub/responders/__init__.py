"""Responders on duty and dispatch (issue 18)."""
