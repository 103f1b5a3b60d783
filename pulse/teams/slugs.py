"""URL slugs for teams."""

from __future__ import annotations

import re
import secrets
import unicodedata

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
RESERVED = frozenset({"new", "api", "admin", "settings", "me", "current"})


def slugify(text: str) -> str:
    """ASCII, lower case, dashes; never empty and never only digits."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-")
    if not slug or slug.isdigit() or slug in RESERVED:
        slug = f"team-{slug}" if slug else f"team-{secrets.token_hex(3)}"
    return slug


def slug_problem(slug: str) -> str | None:
    """Why a slug chosen by a person cannot be used, or None."""
    if not SLUG_PATTERN.match(slug):
        return "Use 1-64 lower-case letters, digits and dashes, not starting or ending with a dash."
    if slug.isdigit():
        return "A slug cannot be only digits (those are read as ids)."
    if slug in RESERVED:
        return "This slug is reserved."
    return None
