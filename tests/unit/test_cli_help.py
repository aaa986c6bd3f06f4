"""Every `podium` verb, nested ones included, answers --help with its own one-line description; completion works."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from podium.cli.main import cli


def _verbs(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in sorted(group.commands.items()):
        out.append(prefix + (name,))
        if isinstance(command, click.Group):
            out.extend(_verbs(command, prefix + (name,)))
    return out


VERBS = _verbs(cli)


def test_the_verbs_the_contract_names_are_there():
    names = {" ".join(v) for v in VERBS}
    assert {"serve", "worker", "demo", "submit", "check", "leaderboard", "starter", "challenge add", "db upgrade",
            "user add", "token", "backup", "restore", "lti add-platform"} <= names, sorted(names)


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help(verb):
    result = CliRunner().invoke(cli, [*verb, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ") and " ".join(verb) in result.output.splitlines()[0]
    command = cli
    for name in verb:
        command = command.commands[name]
    assert command.help and command.help.strip(), f"podium {' '.join(verb)} has no description"


def test_shell_completion_lists_the_verbs():
    result = CliRunner().invoke(cli, [], prog_name="podium", env={"_PODIUM_COMPLETE": "bash_complete",
                                                                    "COMP_WORDS": "podium cha", "COMP_CWORD": "1"})
    assert result.exit_code == 0 and "challenge" in result.output, result.output
