"""Model costs as the pages and the API show them: each ranking entry's params and FLOPs, the score-vs-cost
scatter and its Pareto front, and the baseline's numbers beside a student's own."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.core import states
from podium.core.config import BASELINE_USER
from podium.core.models import Challenge, Score, Submission, User
from podium.server.cost_chart import scatter_svg
from podium.server.pareto import Point, front


def attach(rows: list[dict], entries: list) -> None:
    """Give each leaderboard row the params and flops_per_input of the entry it ranks with."""
    for row, e in zip(rows, entries, strict=True):
        row["params"], row["flops_per_input"] = e.params, e.flops_per_input


def view(challenge: Challenge, rows: list[dict]) -> dict:
    """The board's ranking keys: "ranking", and under ranking = "pareto" the users on the front, cheapest first."""
    if challenge.ranking != "pareto":
        return {"ranking": "score"}
    return {"ranking": "pareto", "front": [r["user"] for r in front_rows(rows)]}


def points(rows: list[dict]) -> list[Point]:
    """The board's rows as scatter points: public score against the ranking entry's FLOPs per input."""
    return [Point(r["user"], r["public_score"], r.get("flops_per_input")) for r in rows]


def front_rows(rows: list[dict]) -> list[dict]:
    """The rows on the Pareto front (no other row has both a higher public score and fewer FLOPs), cheapest first."""
    order = {p.key: i for i, p in enumerate(front(points(rows)))}
    return sorted((r for r in rows if r["user"] in order), key=lambda r: order[r["user"]])


def scatter(rows: list[dict]):
    """The SVG scatter of the board (empty markup when no row has been measured)."""
    return scatter_svg(points(rows))


def baseline(session: Session, challenge: Challenge) -> dict | None:
    """The baseline's best scored entry in this challenge: its public score and what it cost, or None."""
    row = session.execute(
        select(Score.public_score, Submission.params, Submission.flops_per_input, Submission.inference_ms,
               Submission.peak_memory_mb)
        .join(Submission, Submission.id == Score.submission_id).join(User, User.id == Submission.user_id)
        .where(Submission.challenge_id == challenge.id, Submission.status == states.SCORED,
               User.username == BASELINE_USER)
        .order_by(Score.public_score.desc(), Submission.created_at).limit(1)).first()
    return dict(row._mapping) if row is not None else None
