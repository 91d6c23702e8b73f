"""Staff accounts, sessions, login limits and the access policy on every route."""
