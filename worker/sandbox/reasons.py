"""Turn what happened to a scoring child into a short reason a student can act on."""

from __future__ import annotations

import re
import signal

MODEL_TEXT_LIMIT = 300
RECIPE_TEXT_LIMIT = 1500
_MEMORY_HINTS = ("can't allocate memory", "cannot allocate memory", "memoryerror", "bad_alloc", "out of memory",
                 "failed to allocate memory")  # the last: ONNX Runtime's
_STAGE_WORDS = {None: "starting", "confined": "loading", "load": "loading", "forward": "running forward()"}


def cut(text: str, limit: int = MODEL_TEXT_LIMIT) -> str:
    """Make model-produced text safe to show: printable, one line, at most limit characters."""
    text = re.sub(r"[^\x20-\x7e]+", " ", str(text)).strip()
    text = re.sub(r"\s{2,}", " ", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cut_lines(text: str, limit: int = RECIPE_TEXT_LIMIT) -> str:
    """Like cut(), but keeps line breaks and indentation: for reasons that end in a recipe."""
    lines = [re.sub(r"[^\x20-\x7e]+", " ", ln).rstrip() for ln in str(text).split("\n")]
    text = re.sub(r"\n{2,}", "\n", "\n".join(lines).strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def model_message(message: str) -> str:
    """Keep the part of an exception text that names the error (TorchScript puts it last)."""
    if "Traceback of TorchScript" in message:
        lines = [ln for ln in message.splitlines() if ln.strip()]
        message = lines[-1] if lines else message
    return cut(message)


def is_memory_message(message: str) -> bool:
    """True when an exception text says an allocation failed."""
    low = message.lower()
    return any(h in low for h in _MEMORY_HINTS)


def time_limit(limit_s: float) -> str:
    """Reason for a child killed at the wall-clock limit."""
    return f"ran longer than the {limit_s:g} s limit"


def memory_limit(limit_mb: int) -> str:
    """Reason for a child that ran out of its memory allowance."""
    return f"used more than the {limit_mb} MB memory limit"


def from_error(frame: dict, *, memory_limit_mb: int) -> str:
    """Reason for an error frame the child sent."""
    message = str(frame.get("message", ""))
    stage = frame.get("stage")
    if is_memory_message(message):
        return memory_limit(memory_limit_mb)
    if stage == "signature":
        return cut_lines(message)
    if frame.get("output"):
        return cut(message)
    if stage == "load":
        return f"the model failed to load: {model_message(message)}"
    return f"forward() raised: {model_message(message)}"


def from_exit(status: int, *, stage: str | None, limit_s: float, memory_limit_mb: int, near_memory_limit: bool, killed_by_us: bool) -> str:
    """Reason for a child that ended without a result; status is -signal or the exit code."""
    where = _STAGE_WORDS.get(stage, "running")
    if killed_by_us:
        return time_limit(limit_s)
    if near_memory_limit:
        return memory_limit(memory_limit_mb)
    sig = -status if status < 0 else 0
    if sig == signal.SIGXCPU:
        return f"used more CPU time than the {limit_s:g} s limit allows"
    if sig == signal.SIGKILL:
        return f"was killed by the system while {where}, most likely for using too much memory"
    if sig:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"the model crashed while {where} (signal {name})"
    return f"the model process exited (code {status}) while {where} without returning scores"
