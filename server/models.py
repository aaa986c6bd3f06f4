"""Podium's tables in SQLAlchemy 2.0 typed style; the schema itself is created only by Alembic."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC, on SQLite and Postgres alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware values")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Course(Base):
    """A class of students that joins with a code."""

    __tablename__ = "courses"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    join_code: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    """A student or an instructor."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="student")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    alias: Mapped[str | None] = mapped_column(String(64), unique=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id"))
    disqualified_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def is_instructor(self) -> bool:
        """True for instructors."""
        return self.role == "instructor"


class ApiToken(Base):
    """A hashed API token; the plain token is shown once when created."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    user: Mapped[User] = relationship()


class Challenge(Base):
    """A challenge defined from a bundle; test data lives in the blob store by sha256."""

    __tablename__ = "challenges"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    labels: Mapped[list] = mapped_column(JSON)
    input_shape: Mapped[list] = mapped_column(JSON)
    metric: Mapped[str] = mapped_column(String(32), default="accuracy")
    public_fraction: Mapped[float] = mapped_column(Float, default=0.3)
    split_seed: Mapped[int] = mapped_column(Integer, default=0)
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    daily_limit: Mapped[int] = mapped_column(Integer, default=10)
    max_queued: Mapped[int] = mapped_column(Integer, default=3)
    max_model_mb: Mapped[float] = mapped_column(Float, default=20.0)
    time_limit_s: Mapped[float] = mapped_column(Float, default=60.0)
    memory_limit_mb: Mapped[int] = mapped_column(Integer, default=2048)
    feature_recipe: Mapped[dict | None] = mapped_column(JSON)
    readme: Mapped[str] = mapped_column(Text, default="")
    test_sha256: Mapped[str] = mapped_column(String(64))
    n_test: Mapped[int] = mapped_column(Integer)
    train_sha256: Mapped[str | None] = mapped_column(String(64))
    starter_sha256: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id"))
    revealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def num_classes(self) -> int:
        """How many classes the model must score."""
        return len(self.labels)


class Submission(Base):
    """One uploaded model; its status changes only through server.states.transition."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_challenge_user", "challenge_id", "user_id"),
        Index("ix_submissions_status_lease", "status", "lease_expires_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    infra_retries: Mapped[int] = mapped_column(Integer, default=0)
    model_sha256: Mapped[str] = mapped_column(String(64), index=True)
    model_size: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255), default="model.pt")
    error: Mapped[str | None] = mapped_column(Text)
    failure_kind: Mapped[str | None] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(255))
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)
    disqualified_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    challenge: Mapped[Challenge] = relationship()
    user: Mapped[User] = relationship()
    score: Mapped["Score | None"] = relationship(back_populates="submission", uselist=False)


class Score(Base):
    """The result of scoring one submission: one row per submission, written once per attempt."""

    __tablename__ = "scores"
    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), unique=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    metric: Mapped[str] = mapped_column(String(32))
    public_score: Mapped[float] = mapped_column(Float)
    private_score: Mapped[float] = mapped_column(Float)
    n_public: Mapped[int] = mapped_column(Integer)
    n_private: Mapped[int] = mapped_column(Integer)
    public_per_class: Mapped[list | None] = mapped_column(JSON)
    public_confusion: Mapped[list | None] = mapped_column(JSON)
    timings: Mapped[dict | None] = mapped_column(JSON)
    device: Mapped[str | None] = mapped_column(String(32))
    versions: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submission: Mapped[Submission] = relationship(back_populates="score")


Index("ix_scores_board", Score.challenge_id, Score.user_id, Score.public_score)

# Partial indexes that let the leaderboard find each student's eligible and final entries directly.
_ELIGIBLE = "status = 'scored' AND disqualified_reason IS NULL"
Index("ix_submissions_eligible", Submission.challenge_id, Submission.user_id,
      postgresql_where=text(_ELIGIBLE), sqlite_where=text(_ELIGIBLE))
Index("ix_submissions_final", Submission.challenge_id, Submission.user_id,
      postgresql_where=text("is_final"), sqlite_where=text("is_final"))


class Rescore(Base):
    """An instructor's re-score request, with the scores as they were before, so the change can be reported."""

    __tablename__ = "rescores"
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # [{"id", "status", "public_score", "private_score"}] of every submission the request re-opened.
    before: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
