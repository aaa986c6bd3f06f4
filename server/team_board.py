"""What a team challenge's board adds to the rows of board_entries: each team's members, as the viewer may see them.

Ranking is the same table as an individual challenge's (podium.core.board): a team's row points at the
team's ranking entry, and submissions without a team (an instructor's, the demo baseline's) rank as
their uploader.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.core.models import TeamMember, User


def members(session: Session, team_ids: list[int], viewer: User | None) -> dict[int, list[str]]:
    """The current members' public names of these teams, in the order they joined (one statement)."""
    out: dict[int, list[str]] = {t: [] for t in team_ids}
    if not team_ids:
        return out
    for team_id, username, alias in session.execute(
            select(TeamMember.team_id, User.username, User.alias).join(User, User.id == TeamMember.user_id)
            .where(TeamMember.team_id.in_(team_ids)).order_by(TeamMember.id)):
        out[team_id].append(username if viewer is not None and viewer.is_instructor else alias or username)
    return out
