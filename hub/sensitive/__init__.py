"""Sensitive periods (敏感时期, issue 20 part 3): an admin raises the alert level for the district or some grids
for a time window. While a period is active, alarms in its scope escalate sooner, the poles run a stricter
detection profile (pushed as a config.update, the safe path), a report goes out every day at 08:00 and the
console shows a banner; at the end everything reverts by itself. See docs/selftest.md, "Sensitive periods".

periods.py (the table and its rules), profile.py (what a pole's config becomes), scheduler.py (the job that
makes the store and the clock true: start, pushes, reports, end), report.py (the daily report and its
deliveries)."""
