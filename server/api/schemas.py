"""Request and response schemas of the REST API (pydantic): the views validate with them and the
OpenAPI document is generated from them (server/api/spec.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from podium.server import fields

Status = Literal["queued", "running", "scored", "failed"]
ModelFormat = Literal["torchscript", "exported_program", "onnx"]


class Out(BaseModel):
    """A response object: a field the view adds without declaring it here fails the schema check."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- challenges

class Challenge(Out):
    """A challenge's public metadata (challenge.toml)."""

    slug: str
    title: str
    summary: str
    kind: str
    labels: list[str]
    input_shape: list[int]
    metric: str
    opens_at: datetime | None
    deadline: datetime | None
    daily_limit: int | None
    max_model_mb: float | None
    time_limit_s: float | None
    max_params: int | None = Field(description="budget: most parameters a model may have (None: no budget)")
    max_mflops: float | None = Field(description="budget: most MFLOPs per input (None: no budget)")
    num_classes: int
    revealed: bool
    team_size: int = Field(description="1: individual; N > 1: teams of up to N students compete as one")
    state: Literal["draft", "published", "archived"] = Field(
        description="draft: seen by instructors only; published; archived: unlisted, read-only")


class ChallengeLinks(Out):
    """Where to read more and what to download."""

    page: str
    leaderboard: str
    starter_kit: str | None
    train_data: str | None


class ChallengeDetail(Challenge):
    """A challenge's public metadata, its feature recipe and its download links."""

    feature_recipe: dict[str, Any] | None
    public_fraction: float
    memory_limit_mb: int | None
    readme: str | None
    links: ChallengeLinks


class ChallengeWindowIn(BaseModel):
    """New submission window; an absent key keeps its value, null clears it (ISO 8601 with offset)."""

    opens_at: str | None = None
    deadline: str | None = None


class ChallengeWindow(Out):
    """A challenge's submission window."""

    slug: str
    opens_at: datetime | None
    deadline: datetime | None


class BundleIn(BaseModel):
    """A zipped challenge bundle; replace=1 updates the challenge of the same slug; publish=1 shows it to students."""

    bundle: bytes
    replace: Literal["0", "1"] | None = None
    publish: Literal["0", "1"] | None = None


class ChallengeCreated(Out):
    """The challenge a bundle created, its state, and what publishing noticed (a cast to float32, a duplicate title)."""

    slug: str
    title: str
    state: Literal["draft", "published", "archived"]
    notes: list[str]


class ChallengeState(Out):
    """A challenge's lifecycle state after a move."""

    challenge: str
    state: Literal["draft", "published", "archived"]
    changed: bool


# ---------------------------------------------------------------- submissions

class ModelUpload(BaseModel):
    """A model file (TorchScript, torch.export archive or ONNX), recognised from its bytes."""

    model: bytes


class Accepted(Out):
    """The upload is stored and queued for grading."""

    id: int
    status: Status


class Submission(Out):
    """One submission; private_score for instructors (everyone after the reveal), the rest for instructors."""

    id: int
    challenge: str
    user: str
    status: Status
    public_score: float | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    model_sha256: str
    is_final: bool
    device: str | None = Field(description="what scored it: cpu, or cuda with the GPU's name (None until scored)")
    format: ModelFormat | None = Field(description="the model's format, recognised from its bytes at upload")
    params: int | None = Field(description="elements of every stored floating-point tensor (None: not measured)")
    flops_per_input: int | None = Field(description="FLOPs for one input: 2 per multiply-accumulate of convolutions "
                                        "and matrix products (None: not measured)")
    inference_ms: float | None = Field(description="the scoring pass over the whole test set, in the sandbox")
    peak_memory_mb: float | None = Field(description="memory the model needed while scoring, where measurable")
    team: str | None = Field(default=None, description="team challenges: the team's name")
    private_score: float | None = None
    rank: int | None = Field(default=None, description="the owner's public rank, on a scored submission")
    attempt: int | None = None
    worker: str | None = None
    failure_kind: str | None = None
    disqualified_reason: str | None = None
    timings: dict[str, Any] | None = None


class DashboardRow(Submission):
    """A submission on the instructor's dashboard, with the other students who uploaded the identical file."""

    same_model_as: list[str]


class DashboardQuery(BaseModel):
    """Which page of the dashboard: the newest `limit` submissions older than `before`, optionally filtered."""

    model_config = ConfigDict(extra="ignore")
    student: str | None = Field(default=None, description="only this student's (username)")
    status: Status | None = None
    before: int | None = Field(default=None, ge=0, le=2**31 - 1, description="only ids below this (the next page)")
    limit: int = Field(default=100, ge=1, le=1000)


class FinalIn(BaseModel):
    """Mark (true) or unmark (false) a final pick."""

    final: bool = True


class ReasonIn(BaseModel):
    """A disqualification reason; empty or absent reinstates."""

    reason: str | None = Field(default=None, max_length=fields.REASON)


class ClassResult(Out):
    """Accuracy on one class, on the public rows."""

    label: str
    accuracy: float | None
    support: int


class Results(Out):
    """Per-class accuracy and the confusion matrix (rows: true label) on the public rows."""

    id: int
    labels: list[str]
    confusion: list[list[int]]
    per_class: list[ClassResult]


# ---------------------------------------------------------------- leaderboard

class LeaderboardRow(Out):
    """A student's best entry; after the reveal also the public rank and the move from it."""

    rank: int
    user: str
    public_score: float
    entries: int
    best_at: datetime
    members: list[str] | None = Field(default=None, description="team challenges: the team's members")
    private_score: float | None = None
    public_rank: int | None = None
    rank_change: int | None = None
    params: int | None = Field(description="the ranking entry's stored floating-point tensor elements (None: not measured)")
    flops_per_input: int | None = Field(description="the ranking entry's FLOPs for one input (None: not measured)")


class Leaderboard(Out):
    """One page of the ranked board of a challenge."""

    challenge: str
    metric: str
    revealed: bool
    team_size: int | None = Field(default=None, description="team challenges only")
    rows: list[LeaderboardRow]
    ranking: Literal["score", "pareto"] = Field(description="the challenge's view: by score, or its Pareto front too")
    front: list[str] | None = Field(default=None, description='ranking "pareto": the users on the Pareto front of '
                                    "public score against FLOPs per input, cheapest first (over the whole board)")
    total: int = Field(description="how many competitors the board ranks (every page)")


class LeaderboardQuery(BaseModel):
    """Which page of the board: rows offset+1 .. offset+limit."""

    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=100, ge=1, le=1000, description="rows per page (default 100, at most 1000)")
    offset: int = Field(default=0, ge=0, le=2**31 - 1, description="rows to skip from the top")


class RevealIn(BaseModel):
    """Reveal (true) or hide again (false) the private leaderboard."""

    revealed: bool = True


class Revealed(Out):
    """Whether the private leaderboard shows."""

    challenge: str
    revealed: bool
    revealed_at: datetime | None


# ---------------------------------------------------------------- instructors

class RescoreIn(BaseModel):
    """Which finished submissions to grade again; absent or null: all of the challenge's."""

    submission_ids: list[StrictInt] | None = None

    @field_validator("submission_ids", mode="before")
    @classmethod
    def _ints(cls, value):
        if value is not None and not (isinstance(value, list) and all(isinstance(i, int) for i in value)):
            raise ValueError("submission_ids must be a list of integers")
        return value


class RescoreStarted(Out):
    """The re-score report's id and the submissions it re-opened."""

    rescore: int
    submissions: list[int]


class RescoreChange(Out):
    """One re-scored submission, before and now."""

    id: int
    user: str
    old_status: str
    old_public: float | None
    old_private: float | None
    status: str
    public: float | None
    private: float | None
    changed: bool
    pending: bool


class RescoreReport(Out):
    """What a re-score changed."""

    id: int
    created_at: datetime | None
    pending: int
    changes: list[RescoreChange]


class UserDisqualified(Out):
    """A student's disqualification (null: in good standing)."""

    user: str
    disqualified_reason: str | None


class CourseIn(BaseModel):
    """A new course's name."""

    name: str = ""


class Course(Out):
    """A course and the code students join it with."""

    id: int
    name: str
    join_code: str


class RosterResult(Out):
    """What a roster import did."""

    added: list[str]
    updated: list[str]
    errors: list[str]
    claim_codes: dict[str, str] = Field(description="username -> claim code of every unclaimed entry in the import: "
                                        "the student registers with the join code, the username and this code")


# ---------------------------------------------------------------- teams

class Team(Out):
    """A team of a team challenge; the join code goes to its members and instructors only."""

    id: int
    name: str
    members: list[str]
    join_code: str | None = None


class TeamNameIn(BaseModel):
    """A new team's name."""

    name: str = ""


class TeamJoinIn(BaseModel):
    """A team's join code."""

    code: str = ""


class TeamMoveIn(BaseModel):
    """Move a student into the team with this id (null: out of any team)."""

    username: str = ""
    team: int | None = None


class TeamLeft(Out):
    """The team the caller left."""

    left: str


class TeamMoved(Out):
    """Where a moved student is now."""

    user: str
    team: Team | None
