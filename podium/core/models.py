"""Podium's tables in SQLAlchemy 2.0 typed style; the schema itself is created only by Alembic."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from podium.core.db import Base


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC, on SQLite and Postgres alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware values")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


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
    # Every browser session carries the version it began with; raising it ends all of them (logout, a new password).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # An unclaimed roster entry's one-time code (shown to the instructor); cleared when the student claims it.
    claim_code: Mapped[str | None] = mapped_column(String(16))
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
    team_size: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Optional budgets: a model over one fails with its measured value in the reason (None: no budget).
    max_params: Mapped[int | None] = mapped_column(BigInteger)
    max_mflops: Mapped[float | None] = mapped_column(Float)
    ranking: Mapped[str] = mapped_column(String(16), default="score", server_default="score")
    feature_recipe: Mapped[dict | None] = mapped_column(JSON)
    readme: Mapped[str] = mapped_column(Text, default="")
    test_sha256: Mapped[str] = mapped_column(String(64))
    n_test: Mapped[int] = mapped_column(Integer)
    train_sha256: Mapped[str | None] = mapped_column(String(64))
    starter_sha256: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id"))
    revealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # draft | published | archived (podium.server.lifecycle holds the rules)
    state: Mapped[str] = mapped_column(String(16), default="published", server_default="published")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def num_classes(self) -> int:
        """How many classes the model must score."""
        return len(self.labels)

    @property
    def is_team(self) -> bool:
        """True when students compete in teams (team_size > 1)."""
        return (self.team_size or 1) > 1


class Team(Base):
    """Students who compete as one in a team challenge: one leaderboard row, one limit, one pair of final picks."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("challenge_id", "name_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))  # the name case-folded: unique per challenge
    join_code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    members: Mapped[list[TeamMember]] = relationship(back_populates="team", order_by="TeamMember.id")


class TeamMember(Base):
    """A student's seat in a team; (challenge, user) is unique, so nobody is in two teams of one challenge."""

    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("challenge_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    team: Mapped[Team] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class TeamEvent(Base):
    """The log of every team change: created, joined, left, moved (by whom, from which team to which)."""

    __tablename__ = "team_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))
    from_team: Mapped[str | None] = mapped_column(String(64))
    to_team: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])


class Submission(Base):
    """One uploaded model; its status changes only through podium.core.states.transition."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_challenge_user", "challenge_id", "user_id"),
        Index("ix_submissions_status_lease", "status", "lease_expires_at"),
        Index("ix_submissions_user_idempotency", "user_id", "idempotency_key"),
        Index("ix_submissions_challenge_recent", "challenge_id", "id"),  # the dashboard's pages, newest first
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # In a team challenge, the team the submission was made for: it stays the team's when its uploader moves.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    infra_retries: Mapped[int] = mapped_column(Integer, default=0)
    model_sha256: Mapped[str] = mapped_column(String(64), index=True)
    model_size: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255), default="model.pt")
    # The upload's Idempotency-Key header: a retry with the same key (same user, within a day) gets this row back.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
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
    # What the sandbox found and measured (also for a model that failed a budget): None until it has looked.
    format: Mapped[str | None] = mapped_column(String(32))
    params: Mapped[int | None] = mapped_column(BigInteger)
    flops_per_input: Mapped[int | None] = mapped_column(BigInteger)
    inference_ms: Mapped[float | None] = mapped_column(Float)
    peak_memory_mb: Mapped[float | None] = mapped_column(Float)
    challenge: Mapped[Challenge] = relationship()
    user: Mapped[User] = relationship()
    team: Mapped[Team | None] = relationship()
    score: Mapped[Score | None] = relationship(back_populates="submission", uselist=False)


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


class BoardEntry(Base):
    """The entry a competitor (a student, or a team in a team challenge) ranks with on one board of a challenge.

    Kept by podium.core.board in the transaction of every move that changes a ranking, so a page of the
    leaderboard reads a page of these rows. board: "public" (best public entry) or "private" (the entry
    judged at the reveal). owner_kind: "user" or "team"; owner_id: that user's or team's id.
    """

    __tablename__ = "board_entries"
    __table_args__ = (
        UniqueConstraint("challenge_id", "board", "owner_kind", "owner_id", name="uq_board_entries_owner"),
        # The board's order: a page is a walk from an offset, a rank is a count of the rows before one.
        Index("ix_board_entries_rank", "challenge_id", "board", "order_score", "created_at", "submission_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    board: Mapped[str] = mapped_column(String(8))
    owner_kind: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[int] = mapped_column(Integer)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    order_score: Mapped[float] = mapped_column(Float)  # the ranking score negated: ascending order is best first
    public_score: Mapped[float] = mapped_column(Float)
    private_score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the submission's: ties go to the earlier
    entries: Mapped[int] = mapped_column(Integer)  # the competitor's eligible scored submissions
    # The ranking submission's cost, copied so that the cost views read the board alone.
    params: Mapped[int | None] = mapped_column(BigInteger)
    flops_per_input: Mapped[int | None] = mapped_column(BigInteger)


class BoardProgress(Base):
    """A point where a competitor's best public score improved: the progress chart's line, kept with board_entries.

    One row per eligible submission that scored above every earlier one of its competitor (created_at, then
    id), so a chart reads a few rows per competitor however long its history.
    """

    __tablename__ = "board_progress"
    __table_args__ = (Index("ix_board_progress_owner", "challenge_id", "owner_kind", "owner_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    owner_kind: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[int] = mapped_column(Integer)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    public_score: Mapped[float] = mapped_column(Float)


class BoardVersion(Base):
    """When a challenge's board last changed: the ETag and Last-Modified of its pages, and its writers' lock."""

    __tablename__ = "board_versions"
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Rescore(Base):
    """An instructor's re-score request, with the scores as they were before, so the change can be reported."""

    __tablename__ = "rescores"
    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # [{"id", "status", "public_score", "private_score"}] of every submission the request re-opened.
    before: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
