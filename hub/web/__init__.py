"""The console page the browsers load, and its static files."""
