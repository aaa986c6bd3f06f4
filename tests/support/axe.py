"""axe-core (vendored in tests/support/axe/) injected by Playwright: WCAG 2.1 A/AA checks of a page as it is shown."""
from __future__ import annotations

from pathlib import Path

AXE = Path(__file__).parent / "axe" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")


def install(context) -> None:
    """Make axe available in every page of this browser context (an init script: the page's CSP does not apply)."""
    context.add_init_script(path=str(AXE))


def violations(page, impacts=BLOCKING) -> list[dict]:
    """axe's WCAG 2.1 A/AA violations on the page as it is now, of these impacts."""
    result = page.evaluate("""tags => axe.run(document, {runOnly: {type: "tag", values: tags},
                                                         resultTypes: ["violations"]})""", TAGS)
    return [v for v in result["violations"] if v["impact"] in impacts]


def describe(found: list[dict]) -> str:
    """One readable paragraph per violation: rule, impact, help, and the first offending elements."""
    lines = []
    for v in found:
        nodes = "; ".join(" ".join(n["target"]) + " -> " + n["failureSummary"].replace("\n", " ")
                          for n in v["nodes"][:4])
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} elements] {nodes}")
    return "\n".join(lines)
