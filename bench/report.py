"""Machine details, the results table with ratios and targets, and bench/RESULTS.md."""
from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

E2E_SLACK_S = 0.3
BURST_MIN = 0.85
JSON_P95_MS, HTML_P95_MS = 50.0, 100.0


def machine() -> dict:
    """What the numbers were measured on."""
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent.parent).stdout.strip()
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu,
            "cores": len(os.sched_getaffinity(0)), "memory_gb": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": sys.version.split()[0], "torch": torch.__version__,
            "cuda": torch.cuda.is_available(), "sqlite": sqlite3.sqlite_version,
            "commit": commit + (" (+ uncommitted changes)" if dirty else ""), "load_before": os.getloadavg()}


def _ms(s: float) -> str:
    return f"{s * 1000:.0f} ms"


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def table(r: dict) -> list[str]:
    """The summary table rows (markdown) with ratios and whether each target is met."""
    lines = ["| measure | value | target | |", "|---|---|---|---|"]
    for slug, g in r.get("grading", {}).items():
        raw, e2e = g["raw"]["median_s"], g["e2e_median_s"]
        lines.append(f"| (a) raw inference, {slug} ({g['raw']['n']} inputs, {g['raw']['threads']} threads): median "
                     f"(fastest) of {g['raw']['passes']} passes | {_ms(raw)} ({_ms(g['raw']['min_s'])}) | | |")
        lines.append(f"| (b) end to end, {slug}: upload start to score committed, median (p95) | {_ms(e2e)} "
                     f"({_ms(g['e2e_p95_s'])}) | <= (a) + 300 ms = {_ms(raw + E2E_SLACK_S)} | "
                     f"{_ok(e2e <= raw + E2E_SLACK_S)} |")
        lines.append(f"| (b') the same, seen by a client polling every {g['poll_ms']:.0f} ms, median | "
                     f"{_ms(g['seen_median_s'])} | | |")
        lines.append(f"| (b)/(a), {slug} | {e2e / raw:.2f} (overhead {_ms(e2e - raw)}) | | |")
    for label, b in r.get("bursts", {}).items():
        ratio = b["wall_s"] / b["sum_raw_s"]
        lines.append(f"| (d) burst of {b['n']} on one worker ({b['slug']}, {label}): wall, upload to last score | "
                     f"{b['wall_s']:.1f} s ({b['n'] / b['wall_s']:.2f}/s) | | |")
        lines.append(f"| (d)/(sum of (a)) = {b['wall_s']:.1f} s / ({b['n']} x {_ms(b['raw_s'])}) | {ratio:.2f} "
                     f"(throughput {1 / ratio:.0%} of raw) | <= {1 / BURST_MIN:.2f} (>= 85%) | "
                     f"{_ok(1 / ratio >= BURST_MIN)} |")
        lines.append(f"| (d) worker only: first claim to last score | {b['drain_s']:.1f} s "
                     f"({b['sum_raw_s'] / b['drain_s']:.0%} of raw); per submission {_ms(b['drain_s'] / b['n'])}: "
                     f"sandbox inference {_ms(b['per_sub_inference_s'])} ({b['inference_share']:.0%} of the worker's "
                     f"time), gap between tasks {_ms(b['gap_between_tasks_s'])} | | |")
        if b.get("raw_fresh_s"):
            fresh = b["raw_fresh_s"] * b["n"]
            lines.append(f"| (d) against (a'): the model loaded anew before each pass in the warm process "
                         f"({_ms(b['raw_fresh_s'])} a pass), as every submission is a model never run before | "
                         f"{fresh / b['wall_s']:.0%} of that throughput | | |")
        if "cpu_per_sub_s" in b:
            c = b["cpu_per_sub_s"]
            spent = sum(c.values())
            lines.append(f"| (d) CPU per submission (all processes, upload phase included) | {_ms(spent)} of CPU: scoring "
                         f"children {_ms(c['scoring_children_s'])} (a raw pass: {_ms(b['raw_cpu_s'])}), zygote "
                         f"{_ms(c['zygote_s'])}, Celery worker {_ms(c['celery_s'])}, web {_ms(c['web_s'])}; "
                         f"{b['cores']} cores can do at most {b['cores'] / spent:.1f}/s at this cost | | |")
    for variant, board in r.get("board", {}).items():
        judged = variant == r.get("board_judged", variant)
        for page, lat in board["pages"].items():
            limit = HTML_P95_MS if "html" in page.lower() else JSON_P95_MS
            verdict = f"p95 < {limit:.0f} ms | {_ok(lat['p95_ms'] < limit)}" if judged else "(see notes) |"
            lines.append(f"| (e) {page}, {variant}: p50 / p95 | {lat['p50_ms']:.0f} / {lat['p95_ms']:.0f} ms | "
                         f"{verdict} |")
        lines.append(f"| (e) SQL statements per page ({variant}) | public {board['public']['statements_per_board']}, "
                     f"revealed {board['revealed']['statements_per_board']}, rank "
                     f"{board['public']['statements_per_rank']} (the same at 10 and 30,000 rows: "
                     f"tests/test_leaderboard.py) | constant | met |")
    if "uploads" in r:
        u = r["uploads"]
        bounded = u["max_worker_growth_mb"] < u["model_mb"]
        lines.append(f"| (f) web RSS, {u['clients']} clients x {u['model_mb']:.0f} MB at once: baseline -> peak "
                     f"(all web processes) | {u['baseline_rss_mb']:.0f} -> {u['peak_rss_total_mb']:.0f} MB; "
                     f"largest growth of one worker {u['max_worker_growth_mb']:.0f} MB | growth < one model "
                     f"({u['model_mb']:.0f} MB) | {_ok(bounded)} |")
    return lines


def breakdown_lines(r: dict) -> list[str]:
    """(c) Median seconds of each stage, per challenge."""
    slugs = list(r.get("grading", {}))
    if not slugs:
        return []
    lines = ["| stage (median) | " + " | ".join(slugs) + " |", "|---|" + "---|" * len(slugs)]
    keys = list(next(iter(r["grading"].values()))["breakdown"])
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(_ms(r["grading"][s]["breakdown"].get(k, float("nan"))) for s in slugs)
                     + " |")
    return lines


def write(r: dict, path: Path, notes: list[str]) -> str:
    """Write RESULTS.md; returns its text."""
    m = r["machine"]
    text = "\n".join([
        "# Grading speed: benchmark results",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench.run`); issue 7. One run, one machine.",
        "",
        f"- date {m['date']}, commit {m['commit']}",
        f"- CPU {m['cpu']}, {m['cores']} cores available, {m['memory_gb']} GB RAM, kernel {m['kernel']}, "
        f"no GPU" if not m["cuda"] else f"- CPU {m['cpu']}, CUDA available",
        f"- Python {m['python']}, torch {m['torch']}, SQLite {m['sqlite']}, {r.get('postgres', 'Postgres n/a')}",
        f"- load average before / after the run: {m['load_before'][0]:.1f} / {r['load_after'][0]:.1f} "
        "(other work on the machine slows every number; (a) is measured between the (b) runs so both see the same load)",
        f"- bench wall time {r['bench_wall_s']:.0f} s",
        "",
        "## Summary",
        "",
        *table(r),
        "",
        "## (c) Where the time goes, upload to score seen (Score.timings and row times)",
        "",
        *breakdown_lines(r),
        "",
        "## Notes",
        "",
        *[f"- {n}" for n in notes],
        *[f"- NOT MEASURED: {k}: {v}" for k, v in r.get("errors", {}).items()],
        "",
        "## Raw numbers",
        "",
        "```",
        *_raw_lines(r),
        "```",
        "",
    ])
    path.write_text(text)
    return text


def _raw_lines(r: dict) -> list[str]:
    import json
    slim = {k: v for k, v in r.items() if k not in ("machine",)}
    for board in slim.get("board", {}).values():
        for part in ("public", "revealed"):
            board.get(part, {}).pop("plan", None)
    return [f"{k}: {json.dumps(v, default=str)}" for k, v in slim.items()]
