"""Pure functions: slugs, scopes, domains, origins, passwords."""

from __future__ import annotations

import pytest

from pulse.accounts.passwords import hash_password, verify_password
from pulse.accounts.scopes import READ_SCOPES, ROLE_SCOPES, normalise_scopes
from pulse.errors import ValidationFailed
from pulse.sites.service import normalise_domain, normalise_origin
from pulse.teams.slugs import slug_problem, slugify


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Acme Corp", "acme-corp"),
        ("  Ünïcödé  Team ", "unicode-team"),
        ("2024", "team-2024"),
        ("API", "team-api"),
        ("a" * 100, "a" * 60),
    ],
)
def test_slugify(name, slug):
    assert slugify(name) == slug
    assert slug_problem(slug) is None


def test_slugify_never_returns_empty():
    assert slugify("!!!").startswith("team-")


def test_scopes_normalise_aliases_and_reject_unknown():
    assert normalise_scopes(["workspaces:read", "sites:read", "sites:read"]) == [
        "sites:read",
        "teams:read",
    ]
    assert set(normalise_scopes(["read"])) == READ_SCOPES
    with pytest.raises(ValidationFailed):
        normalise_scopes(["sites:read", "god-mode"])


def test_roles_are_nested():
    order = ["viewer", "marketing", "member", "admin", "owner"]
    for lower, higher in zip(order, order[1:], strict=False):
        assert ROLE_SCOPES[lower] <= ROLE_SCOPES[higher], (lower, higher)
    assert "members:write" not in ROLE_SCOPES["member"]
    assert "teams:delete" not in ROLE_SCOPES["admin"]


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("Example.COM", "example.com"),
        ("https://www.example.com/a?b", "www.example.com"),
        ("example.com.", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("localhost", "localhost"),
    ],
)
def test_normalise_domain(raw, domain):
    assert normalise_domain(raw) == domain


@pytest.mark.parametrize("raw", ["", "not a domain", "-bad.com", "a..b", "x" * 300])
def test_normalise_domain_rejects(raw):
    with pytest.raises(ValidationFailed):
        normalise_domain(raw)


def test_normalise_origin():
    assert normalise_origin("HTTPS://Example.com:8443/path") == "https://example.com:8443"
    with pytest.raises(ValidationFailed):
        normalise_origin("javascript:alert(1)")
    with pytest.raises(ValidationFailed):
        normalise_origin("https://x.com:99999")


def test_passwords():
    digest = hash_password("correct horse")
    assert verify_password(digest, "correct horse")
    assert not verify_password(digest, "wrong horse")
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "anything")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "a\\u0000b"}',
        b'{"props": {"k\\u0000": 1}}',
        b'{"events": [{"props": {"deep": ["x", "\\u0000"]}}]}',
    ],
)
def test_json_bodies_with_an_escaped_nul_anywhere_are_refused(raw):
    from pulse.api.routing import decode_json_object

    with pytest.raises(ValidationFailed):
        decode_json_object(raw)


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul():
    from pulse.api.routing import decode_json_object

    assert decode_json_object(b'{"name": "a\\\\u0000b"}') == {"name": "a\\u0000b"}
