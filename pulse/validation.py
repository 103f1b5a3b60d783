"""Checks on text that both the JSON API and the HTML forms apply."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Self-hosted teams use intranet addresses (name@corp.local): accept those suffixes.
INTRANET_SUFFIXES = frozenset({"local", "localhost", "test", "internal", "lan", "home"})


def has_control_chars(value: str) -> bool:
    return CONTROL_CHARS.search(value) is not None


def checked_email(value: str) -> str:
    """The address lower-cased, or ValueError saying what is wrong with it."""
    value = value.strip()
    local, _, domain = value.rpartition("@")
    suffix = domain.rsplit(".", 1)[-1].lower()
    probe = f"{local}@example.com" if suffix in INTRANET_SUFFIXES and local else value
    try:
        validate_email(probe, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return value.lower()
