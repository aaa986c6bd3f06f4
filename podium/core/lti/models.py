"""LTI 1.3 tables: registered platforms, the tool's keys, login attempts, identities, placements, passbacks."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from podium.core.db import Base
from podium.core.models import Challenge, Course, User, UTCDateTime, utcnow

# Passback row states.
PENDING, SENT, FAILED = "pending", "sent", "failed"


class LtiPlatform(Base):
    """A registered LMS (one issuer and client id pair), optionally tied to a Podium course."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    login_url: Mapped[str] = mapped_column(String(500))
    token_url: Mapped[str] = mapped_column(String(500))
    jwks_url: Mapped[str] = mapped_column(String(500))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"))
    # Space-separated origins for CSP frame-ancestors (Canvas frames from the school's own domain).
    frame_origins: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    course: Mapped[Course | None] = relationship()
    deployments: Mapped[list[LtiDeployment]] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                            order_by="LtiDeployment.id")


class LtiDeployment(Base):
    """A deployment id the platform may launch with."""

    __tablename__ = "lti_deployments"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(200))


class LtiKey(Base):
    """The tool's RSA signing key: the newest unretired one signs; retired ones stay in the JWKS a while."""

    __tablename__ = "lti_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(100), unique=True)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LtiNonce(Base):
    """One OIDC login attempt: state and nonce, usable once, for a few minutes."""

    __tablename__ = "lti_nonces"
    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(100), unique=True)
    nonce: Mapped[str] = mapped_column(String(100), unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LtiUser(Base):
    """Which Podium user a platform's `sub` is."""

    __tablename__ = "lti_users"
    __table_args__ = (UniqueConstraint("platform_id", "sub"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user: Mapped[User] = relationship()


class LtiResourceLink(Base):
    """A placement of a challenge in the LMS, with the AGS and NRPS endpoints its launches carried."""

    __tablename__ = "lti_resource_links"
    __table_args__ = (UniqueConstraint("platform_id", "resource_link_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(200))
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    context_id: Mapped[str | None] = mapped_column(String(255))
    context_title: Mapped[str | None] = mapped_column(String(500))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), index=True)
    lineitem_url: Mapped[str | None] = mapped_column(String(1000))
    lineitems_url: Mapped[str | None] = mapped_column(String(1000))
    ags_scopes: Mapped[list] = mapped_column(JSON, default=list)
    nrps_url: Mapped[str | None] = mapped_column(String(1000))
    platform: Mapped[LtiPlatform] = relationship()
    challenge: Mapped[Challenge] = relationship()


class LtiLaunchLink(Base):
    """A user's launches of one placement: their `sub` there and their role in that course."""

    __tablename__ = "lti_launch_links"
    __table_args__ = (UniqueConstraint("user_id", "resource_link_pk"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    resource_link_pk: Mapped[int] = mapped_column(ForeignKey("lti_resource_links.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    last_launch_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resource_link: Mapped[LtiResourceLink] = relationship()
    user: Mapped[User] = relationship()


class LtiPassback(Base):
    """The latest score to send for one launch link, and how sending it went."""

    __tablename__ = "lti_passbacks"
    id: Mapped[int] = mapped_column(primary_key=True)
    launch_link_id: Mapped[int] = mapped_column(ForeignKey("lti_launch_links.id", ondelete="CASCADE"), unique=True)
    score: Mapped[float] = mapped_column(Float)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    score_at: Mapped[datetime] = mapped_column(UTCDateTime())  # sent as the AGS `timestamp`
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    launch_link: Mapped[LtiLaunchLink] = relationship()
