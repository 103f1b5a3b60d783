"""Websites whose traffic a team measures."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pulse.extensions import db
from pulse.models.types import Timestamps


class Site(Timestamps, db.Model):
    """A site; trackers identify it by its public `site_key`, which is not a secret."""

    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("team_id", "domain", name="uq_site_team_domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    domain: Mapped[str] = mapped_column(String(255), nullable=False)
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    site_key: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")

    team = relationship("Team", back_populates="sites")
