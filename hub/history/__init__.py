"""Search of closed alarms and past events for the console's history screen (issue 17)."""
