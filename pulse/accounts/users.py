"""Sign-up and sign-in."""

from __future__ import annotations

from sqlalchemy import func, select

from pulse.accounts import audit
from pulse.accounts.actor import Actor
from pulse.accounts.passwords import hash_password, needs_rehash, verify_password
from pulse.errors import Conflict, ValidationFailed
from pulse.extensions import db
from pulse.models import User, utcnow

MIN_PASSWORD_LENGTH = 10


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_by_email(email: str) -> User | None:
    if "\x00" in email:
        return None
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def check_password_strength(password: str, email: str = "") -> None:
    """Length, and not the email itself: the checks NIST 800-63B asks for."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if email and password.strip().lower() == normalise_email(email):
        problems.append("The password must not be your email address.")
    if problems:
        raise ValidationFailed(errors={"password": problems})


def sign_up(email: str, password: str, name: str = "") -> User:
    """Create an account; 409 when the email is taken."""
    email = normalise_email(email)
    check_password_strength(password, email)
    if find_by_email(email) is not None:
        raise Conflict("An account with this email already exists.", code="email_taken")
    user = User(email=email, name=name.strip(), password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    audit.record(Actor(user=user), "user.signed_up", target=user)
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user whose credentials these are, or None. Same cost for unknown emails."""
    user = find_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        return None
    if needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0
