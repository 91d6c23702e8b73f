"""Rental blocks: doors, tenants registered by real name, fingerprint enrolment and revocation."""
