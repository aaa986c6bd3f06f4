"""What a model costs: stored floating-point parameters and FLOPs for one input, the same for every format.

Plain functions over what a loader gives: a torch module (eager, TorchScript, or an ExportedProgram's
module()) or an ONNX ModelProto. `params` counts the elements of every stored floating-point tensor with at
least one dimension (weights, buffers, tensor constants, ONNX initializers and Constant nodes); integer tensors
(shape constants, BatchNorm's step counter) and 0-d scalars (`x * 0.5` is a number in torch but a 0-d tensor in
ONNX) do not count. `flops_per_input` is 2 per multiply-accumulate of convolutions and matrix products at batch 1,
as torch.utils.flop_counter.FlopCounterMode counts, and 0 for every other operation. torch and onnx are imported
inside the functions: importing this module does nothing.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass


class CostUnknown(Exception):
    """The model's cost cannot be worked out (for example an ONNX shape that no inference resolves)."""


@dataclass(frozen=True)
class Cost:
    """A model's measured size and arithmetic: parameters and FLOPs for one input."""

    params: int
    flops_per_input: int


# ---- torch: eager, TorchScript and ExportedProgram modules ------------------------------------------------

def _as_module(model):
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        return model.module()
    return model


def _script_constants(module) -> list:
    """Tensor constants baked into a TorchScript module's code (torch.jit.trace stores tensors made in forward)."""
    import torch

    if not isinstance(module, torch.jit.ScriptModule) or not hasattr(module, "forward"):
        return []
    out, seen = [], set()
    graph = module.inlined_graph  # held here: its nodes are invalidated once the graph object is freed
    blocks = [graph]
    while blocks:
        for node in blocks.pop().nodes():
            blocks.extend(node.blocks())
            if node.kind() == "prim::Constant" and node.hasAttribute("value") and node.kindOf("value") == "t":
                t = node.t("value")
                if id(t) not in seen:
                    seen.add(id(t))
                    out.append(t)
    return out


def _graph_constants(module) -> list:
    """Tensors an fx GraphModule (ExportedProgram.module()) reads with get_attr that are not parameters or buffers."""
    import torch

    graph = getattr(module, "graph", None)
    if not isinstance(graph, torch.fx.Graph):
        return []
    out = []
    for node in graph.nodes:
        if node.op == "get_attr":
            value = functools.reduce(getattr, node.target.split("."), module)
            if isinstance(value, torch.Tensor):
                out.append(value)
    return out


def torch_params(model) -> int:
    """Elements of the floating-point parameters, buffers and tensor constants (>= 1 dimension) of a torch model."""
    import torch

    module = _as_module(model)
    seen: set[int] = set()
    total = 0
    for t in [*module.parameters(), *module.buffers(), *_script_constants(module), *_graph_constants(module)]:
        if isinstance(t, torch.Tensor) and id(t) not in seen:
            seen.add(id(t))
            if t.is_floating_point() and t.dim() > 0:
                total += t.numel()
    return total


def torch_flops(model, input_shape, *, device: str = "cpu", example=None) -> int:
    """FLOPs of one forward pass at batch 1, as FlopCounterMode counts them (2 per multiply-accumulate).

    example: one input [1, *input_shape] to run (default zeros), so that a model whose path depends on its input
    is counted on a real sample. Works on TorchScript too: its interpreter dispatches every aten op to the mode.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    module = _as_module(model)
    x = example if example is not None else torch.zeros(1, *input_shape)
    x = x[:1].to(device=device, dtype=torch.float32)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(x)
    return int(counter.get_total_flops())


def torch_cost(model, input_shape, *, device: str = "cpu", example=None) -> Cost:
    """params and flops_per_input of a torch model (nn.Module, ScriptModule or ExportedProgram)."""
    return Cost(torch_params(model), torch_flops(model, input_shape, device=device, example=example))


# ---- ONNX ------------------------------------------------------------------------------------------------

def _proto(model):
    import onnx

    if isinstance(model, (bytes, bytearray, memoryview)):
        return onnx.load_model_from_string(bytes(model))
    return model


def _is_float(data_type: int) -> bool:
    import onnx

    name = onnx.TensorProto.DataType.Name(data_type)
    return name.startswith("FLOAT") or name in ("DOUBLE", "BFLOAT16")


def _graphs(graph):
    """A graph and every subgraph (If / Loop / Scan bodies) inside it."""
    import onnx

    todo = [graph]
    while todo:
        g = todo.pop()
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    todo.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    todo.extend(attr.graphs)


def _tensor_elements(t) -> int:
    return math.prod(t.dims) if _is_float(t.data_type) and len(t.dims) > 0 else 0


def onnx_params(model) -> int:
    """Elements of the float initializers and float Constant node tensors (>= 1 dimension) of an ONNX model."""
    import onnx

    proto = _proto(model)
    graphs = list(_graphs(proto.graph))
    nodes = [n for g in graphs for n in g.node] + [n for f in proto.functions for n in f.node]
    total = sum(_tensor_elements(t) for g in graphs for t in g.initializer)
    for g in graphs:
        for s in g.sparse_initializer:
            total += _tensor_elements(s.values)
    for node in nodes:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
            continue
        for attr in node.attribute:
            if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                total += _tensor_elements(attr.t)
            elif attr.name == "sparse_value":
                total += _tensor_elements(attr.sparse_tensor.values)
            elif attr.name == "value_floats":
                total += len(attr.floats)
    return total


def _at_batch_one(proto, input_shape, *, weights: bool = True):
    """A copy of the model whose data input is [1, *input_shape], local functions inlined; weights=False leaves out
    the values of float tensors of more than 64 elements (shape inference needs their dims only: 20x faster)."""
    import onnx
    import onnx.inliner

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    if not weights:
        for g in _graphs(model.graph):
            for t in g.initializer:
                if _is_float(t.data_type) and math.prod(t.dims) > 64:
                    t.ClearField("raw_data")
                    t.ClearField("float_data")
                    t.ClearField("double_data")
                    t.ClearField("int32_data")  # float16 and bfloat16 values live here
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    stored = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in stored]
    if len(inputs) != 1:
        raise CostUnknown(f"the ONNX graph has {len(inputs)} inputs, expected one (the input batch x)")
    dims = inputs[0].type.tensor_type.shape.dim
    del dims[:]
    for d in (1, *input_shape):
        dims.add().dim_value = int(d)
    return model, inputs[0].name


def _shapes(model) -> dict[str, tuple]:
    """Every value's shape from ONNX shape inference (with data propagation); unknown dims are None."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    shapes: dict[str, tuple] = {}
    for g in _graphs(inferred.graph):
        for t in g.initializer:
            shapes[t.name] = tuple(t.dims)
        for vi in [*g.input, *g.output, *g.value_info]:
            tt = vi.type.tensor_type
            if tt.HasField("shape"):
                shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        for node in g.node:
            if node.op_type == "Constant":
                for attr in node.attribute:
                    if attr.name == "value":
                        shapes[node.output[0]] = tuple(attr.t.dims)
    return shapes


# Inputs that carry a shape or an index rather than data: torch.onnx.export computes them from Shape(x) when the
# batch is dynamic, and ONNX shape inference does not follow that arithmetic through a Reshape.
_SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,), "Slice": (1, 2, 3, 4),
                 "Range": (0, 1, 2), "Unsqueeze": (1,), "Squeeze": (1,), "Pad": (1,), "Resize": (2, 3)}


def _fold_shape_inputs(model, input_name: str, input_shape):
    """A copy of the model whose computed shape inputs are constants, evaluated at batch 1 by onnx.reference on
    only the nodes they depend on (a few integer ops on Shape(x)); the model itself unchanged when none is computed."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    g = model.graph
    stored = {t.name for t in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    targets = sorted({n.input[i] for n in g.node for i in _SHAPE_INPUTS.get(n.op_type, ())
                      if i < len(n.input) and n.input[i] and n.input[i] not in stored})
    if not targets:
        return model
    producer = {o: n for n in g.node for o in n.output}
    wanted, todo = set(), list(targets)
    while todo:
        node = producer.get(todo.pop())
        if node is not None and id(node) not in wanted:
            wanted.add(id(node))
            todo.extend(node.input)
    nodes = [n for n in g.node if id(n) in wanted]
    used = {i for n in nodes for i in n.input}
    sub = helper.make_graph(nodes, "shapes", [i for i in g.input if i.name == input_name],
                            [helper.make_empty_tensor_value_info(t) for t in targets],
                            initializer=[t for t in g.initializer if t.name in used])
    probe = helper.make_model(sub, opset_imports=model.opset_import, ir_version=model.ir_version)
    values = ReferenceEvaluator(probe).run(None, {input_name: np.zeros((1, *input_shape), np.float32)})
    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = {t: f"{t}__at_batch_1" for t in targets}
    for t, v in zip(targets, values):
        out.graph.initializer.append(numpy_helper.from_array(np.asarray(v), names[t]))
    for node in out.graph.node:
        for i in _SHAPE_INPUTS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i] in names:
                node.input[i] = names[node.input[i]]
    return out


def _runtime_shapes(model, input_name: str, input_shape, names: set[str]) -> dict[str, tuple]:
    """Shapes of the named values from one batch-1 run in ONNX Runtime, where static inference leaves a dim open."""
    import numpy as np
    import onnx
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {o.name for o in probe.graph.output}
    for name in sorted(names - outputs):
        probe.graph.output.add().name = name
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs() if o.name in names]
    values = session.run(wanted, {input_name: np.zeros((1, *input_shape), np.float32)})
    return {n: tuple(v.shape) for n, v in zip(wanted, values)}


_COUNTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _node_flops(node, shape) -> int:
    ins = [shape(n) for n in node.input[:2]]
    if node.op_type == "Conv":
        y = shape(node.output[0])
        return 2 * y[0] * math.prod(y[2:]) * math.prod(ins[1])
    if node.op_type == "ConvTranspose":
        return 2 * ins[0][0] * math.prod(ins[0][2:]) * math.prod(ins[1])
    if node.op_type == "Gemm":
        attrs = {a.name: a.i for a in node.attribute}
        a, b = ins
        m, k = (a[1], a[0]) if attrs.get("transA") else (a[0], a[1])
        n = b[0] if attrs.get("transB") else b[1]
        return 2 * m * n * k
    y = shape(node.output[0])  # MatMul: each output element is a dot product over A's last dimension
    return 2 * math.prod(y) * ins[0][-1]


def _unresolved(model, shapes: dict) -> bool:
    for g in _graphs(model.graph):
        for n in g.node:
            if n.op_type in _COUNTED and any(shapes.get(v) is None or None in shapes[v] for v in (*n.input[:2], n.output[0])):
                return True
    return False


def onnx_flops(model, input_shape) -> int:
    """FLOPs for one input: 2 per multiply-accumulate of Conv, ConvTranspose, Gemm and MatMul, shapes at batch 1.

    Shapes come from onnx.shape_inference, after the shape arithmetic on Shape(x) that a dynamic-batch export
    feeds its Reshapes is evaluated at batch 1 (onnx.reference, on those few integer ops alone); a dimension still
    open is read from one batch-1 run in ONNX Runtime. A node inside a Loop or Scan body is counted once.
    """
    proto = _proto(model)
    model, input_name = _at_batch_one(proto, input_shape, weights=False)
    shapes = _shapes(model)
    if _unresolved(model, shapes):
        try:
            folded = _fold_shape_inputs(model, input_name, input_shape)
        except Exception:  # an op onnx.reference lacks: ONNX Runtime below reads the dims instead
            folded = model
        if folded is not model:
            model, shapes = folded, _shapes(folded)
    nodes = [n for g in _graphs(model.graph) for n in g.node if n.op_type in _COUNTED and n.domain in ("", "ai.onnx")]
    needed = {name for n in nodes for name in (*n.input[:2], n.output[0])}
    missing = {name for name in needed if name not in shapes or None in shapes[name]}
    if missing:
        try:
            full, _ = _at_batch_one(proto, input_shape)
            shapes.update(_runtime_shapes(full, input_name, input_shape, missing))
        except Exception as exc:
            raise CostUnknown(f"cannot infer the shapes of {sorted(missing)[:3]}: {type(exc).__name__}: {exc}") from None

    def shape(name: str) -> tuple:
        s = shapes.get(name)
        if s is None or None in s:
            raise CostUnknown(f"cannot infer the shape of {name!r}")
        return s

    return sum(_node_flops(n, shape) for n in nodes)


def onnx_cost(model, input_shape) -> Cost:
    """params and flops_per_input of an ONNX model (ModelProto or its serialized bytes)."""
    proto = _proto(model)
    return Cost(onnx_params(proto), onnx_flops(proto, input_shape))


def warm_up() -> None:
    """Run once everything ONNX counting imports or sets up lazily (onnx.reference, shape inference, the inliner),
    so a process confined afterwards (the scoring child) opens no file when it counts."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "first"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "zero"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "first"),
             numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
             numpy_helper.from_array(np.ones((4, 2), np.float32), "w")]
    graph = helper.make_graph(nodes, "warm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], inits)
    model, name = _at_batch_one(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), (1, 2, 2))
    _shapes(_fold_shape_inputs(model, name, (1, 2, 2)))

