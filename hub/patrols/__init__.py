"""Patrols: signed QR stickers on the poles, check-ins from a phone, coverage and night-gap reports."""
