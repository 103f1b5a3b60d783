"""People who sign in to Pulse."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pulse.extensions import db
from pulse.models.types import Timestamps, UTCDateTime


class User(UserMixin, Timestamps, db.Model):
    """An account. Email is stored lower-cased; the password only as an argon2 hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, nullable=False)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on password change or sign-out-everywhere; part of the session id.
    session_version: Mapped[int] = mapped_column(default=1, nullable=False)

    memberships = relationship("Membership", back_populates="user", cascade="all, delete-orphan")

    def get_id(self) -> str:
        """Session id: a password change invalidates every other session."""
        return f"{self.id}:{self.session_version}"
