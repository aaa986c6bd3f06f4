"""Load a model of any accepted format, and run it, behind one interface. Only ever inside the confined child.

    loaded = load_model(data, device="cpu", threads=2)   # data: the model file's bytes
    loaded.format      # "torchscript" | "exported_program" | "onnx"
    loaded.device      # where run() computes: "cpu", "cuda:0" (ONNX: "cpu" unless onnxruntime-gpu runs it)
    loaded.run(batch)  # float32 np.ndarray [B, *input_shape] -> np.ndarray [B, C] float32 scores
    loaded.underlying  # the format's own object: the ScriptModule, the ExportedProgram, or the ONNX bytes
    loaded.module      # the torch.nn.Module that runs (ScriptModule, ExportedProgram.module()); None for ONNX
    loaded.session     # the onnxruntime.InferenceSession (ONNX only)

`torch.jit.load` and `torch.export.load` run Python from the file, and ONNX Runtime reads external-data files
relative to the working directory: call load_model only after podium.worker.sandbox.confine. warm_up() takes
every path once in the zygote, so that nothing is imported or opened lazily after confinement.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from typing import Protocol

import numpy as np
import torch

from podium.core.modelformat import EXPORTED_PROGRAM, EXPORTED_PROGRAM_RECIPE, ONNX, ONNX_RECIPE, TORCHSCRIPT

MAX_ONNX_DEPTH = 64


class LoadedModel(Protocol):
    """What load_model returns, whatever the format (see the module docstring)."""

    format: str
    device: str
    underlying: object
    module: object
    session: object

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 [B, *input_shape] -> float32 scores [B, C]."""


class ContractProblem(Exception):
    """The model loaded but cannot be called the way the contract says (arguments, fixed batch, external data)."""


class OutputProblem(Exception):
    """The model ran but its output breaks the contract."""


def _scores(out) -> np.ndarray:
    if isinstance(out, torch.Tensor):
        if out.is_complex() or out.dtype == torch.bool:
            raise OutputProblem(f"output dtype {out.dtype}, expected float scores")
        return out.detach().to("cpu", torch.float32).numpy()
    if isinstance(out, np.ndarray):
        if out.dtype.kind not in "fiu":
            raise OutputProblem(f"output dtype {out.dtype}, expected float scores")
        return out.astype(np.float32, copy=False)
    raise OutputProblem(f"forward() must return a single tensor, got a {type(out).__name__}")


class TorchScriptModel:
    """A TorchScript module loaded with torch.jit.load onto the child's device."""

    format = TORCHSCRIPT

    def __init__(self, module, device: str):
        self.module = module
        self.device = device
        self.underlying = module
        self.session = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Scores for one batch."""
        xb = torch.from_numpy(batch)
        if self.device != "cpu":
            xb = xb.to(self.device)
        with torch.inference_mode():
            return _scores(self.module(xb))


class ExportedProgramModel:
    """A torch.export ExportedProgram (moved to the child's device) and the module it unlifts to."""

    format = EXPORTED_PROGRAM

    def __init__(self, program, device: str):
        if device != "cpu":
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, device)
        self.program = program
        self.underlying = program
        self.module = program.module()
        self.device = device
        self.session = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Scores for one batch."""
        xb = torch.from_numpy(batch)
        if self.device != "cpu":
            xb = xb.to(self.device)
        with torch.no_grad():
            return _scores(self.module(xb))


class OnnxModel:
    """An ONNX model in an ONNX Runtime session made from its bytes; the single input is found, never assumed."""

    format = ONNX

    def __init__(self, data: bytes, session):
        self.underlying = data
        self.onnx_bytes = data
        self.session = session
        self.module = None
        self.input_name = session.get_inputs()[0].name
        self.device = "cuda:0" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Scores for one batch."""
        return _scores(self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0])


def load_model(data: bytes, *, device: str = "cpu", threads: int = 1):
    """Recognise the format from the bytes and load the model; raise ContractProblem when it cannot be scored."""
    from podium.core.modelformat import inspect_model

    fmt = inspect_model(data, max_bytes=len(data))
    if fmt == TORCHSCRIPT:
        module = torch.jit.load(io.BytesIO(data), map_location=device)
        module.eval()
        _torchscript_signature(module)
        return TorchScriptModel(module, device)
    if fmt == EXPORTED_PROGRAM:
        _refuse_pickled_objects(data)
        try:
            program = torch.export.load(io.BytesIO(data))
        except pickle.UnpicklingError as exc:
            if "Weights only load failed" not in str(exc):
                raise
            # The scoring env sets TORCH_FORCE_WEIGHTS_ONLY_LOAD, so torch.export.load cannot fall back to pickle.
            raise ContractProblem("the torch.export archive holds pickled Python objects beyond plain tensors, "
                                  "which Podium never loads; export a plain model:\n" + EXPORTED_PROGRAM_RECIPE)
        _exported_signature(program)
        return ExportedProgramModel(program, device)
    return OnnxModel(data, _onnx_session(data, device=device, threads=threads))


def _torchscript_signature(model) -> None:
    try:
        schema = model.forward.schema
    except Exception:
        raise ContractProblem("the module has no scripted forward() method")
    args = list(schema.arguments)[1:]  # drop self
    required = [a for a in args if not a.has_default_value()]
    if not args or len(required) > 1:
        raise ContractProblem(f"forward() must take one argument (the input batch x), it takes {len(required)}")


def _refuse_pickled_objects(data: bytes) -> None:
    """Refuse constants that torch.export.load would unpickle with plain pickle (custom and opaque objects)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if name.endswith("_constants_config.json") and "/data/constants/" in name:
                info = zf.getinfo(name)
                if info.file_size > 16 * 2**20:
                    raise ContractProblem("the torch.export archive's constants table is implausibly large")
                config = json.loads(zf.read(info)).get("config", {})
                paths = [str(v.get("path_name", "")) for v in config.values() if isinstance(v, dict)]
                if any(p.startswith(("custom_obj_", "opaque_obj_")) for p in paths):
                    raise ContractProblem("the torch.export archive holds pickled Python objects (custom or opaque "
                                          "objects), which Podium never loads; export a plain model:\n"
                                          + EXPORTED_PROGRAM_RECIPE)


def _exported_signature(program) -> None:
    from torch.export.graph_signature import InputKind

    user = [s for s in program.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    if len(user) != 1:
        raise ContractProblem(f"forward() must take one argument (the input batch x), the exported program takes "
                              f"{len(user)}; export it like this:\n{EXPORTED_PROGRAM_RECIPE}")
    name = getattr(user[0].arg, "name", None)
    node = next((n for n in program.graph.nodes if n.op == "placeholder" and n.name == name), None)
    val = node.meta.get("val") if node is not None else None
    shape = getattr(val, "shape", None)
    if shape is None or len(shape) == 0:
        raise ContractProblem(f"the exported program's input is not a tensor batch; export it like this:\n"
                              f"{EXPORTED_PROGRAM_RECIPE}")
    batch = shape[0]
    if isinstance(batch, int):
        raise ContractProblem(
            f"the batch dimension is fixed at {batch} in this torch.export archive; Podium feeds batches of any "
            f"size. Export it with a dynamic batch (dynamic_shapes):\n{EXPORTED_PROGRAM_RECIPE}")
    low = _lower_bound(program, batch)
    if low is not None and low > 1:
        raise ContractProblem(
            f"the batch dimension of this torch.export archive must be at least {low}; Podium also feeds single "
            f"inputs. Export it with torch.export.Dim(\"batch\") and no min:\n{EXPORTED_PROGRAM_RECIPE}")


def _lower_bound(program, sym) -> int | None:
    try:
        expr = sym.node.expr
        vr = program.range_constraints.get(expr)
        return int(vr.lower) if vr is not None else None
    except Exception:  # a bound we cannot read is checked by running batch 1 (podium check, the upload checks)
        return None


def external_data_problem(model) -> str | None:
    """Why an ONNX ModelProto cannot be scored from its bytes alone (tensors stored in other files), or None."""
    from onnx import TensorProto

    def tensors_of_graph(graph, depth):
        if depth > MAX_ONNX_DEPTH:
            raise ContractProblem(f"the ONNX graph nests subgraphs more than {MAX_ONNX_DEPTH} deep")
        yield from graph.initializer
        for sp in graph.sparse_initializer:
            yield sp.values
            yield sp.indices
        for node in graph.node:
            yield from tensors_of_node(node, depth)

    def tensors_of_node(node, depth):
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sp in attr.sparse_tensors:
                yield sp.values
                yield sp.indices
            if attr.HasField("g"):
                yield from tensors_of_graph(attr.g, depth + 1)
            for g in attr.graphs:
                yield from tensors_of_graph(g, depth + 1)

    def all_tensors():
        yield from tensors_of_graph(model.graph, 0)
        for fn in model.functions:
            for node in fn.node:
                yield from tensors_of_node(node, 0)
        for info in model.training_info:
            yield from tensors_of_graph(info.initialization, 0)
            yield from tensors_of_graph(info.algorithm, 0)

    for t in all_tensors():
        if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
            where = next((e.value for e in t.external_data if e.key == "location"), "another file")
            return (f"the ONNX model keeps tensor {t.name[:80]!r} in external data ({where[:80]!r}); Podium scores "
                    f"one self-contained file. Export it again with external_data=False:\n{ONNX_RECIPE}")
    return None


def session_options(threads: int):
    """ONNX Runtime settings for a scoring child: bounded threads, sequential, no profiling, quiet."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(int(threads), 1)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.enable_profiling = False
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return so


def _providers(device: str) -> list:
    import onnxruntime as ort

    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _onnx_session(data: bytes, *, device: str, threads: int):
    import onnx
    import onnxruntime as ort

    model = onnx.load_model_from_string(data)  # from bytes: never follows external-data references
    problem = external_data_problem(model)
    if problem:
        raise ContractProblem(problem)
    del model
    session = ort.InferenceSession(data, sess_options=session_options(threads), providers=_providers(device))
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ContractProblem(f"the ONNX model takes {len(inputs)} inputs; it must take one (the input batch x). "
                              f"Export it like this:\n{ONNX_RECIPE}")
    if len(outputs) != 1:
        raise ContractProblem(f"the ONNX model has {len(outputs)} outputs; it must return one [batch, classes] "
                              f"tensor. Export it like this:\n{ONNX_RECIPE}")
    if inputs[0].type != "tensor(float)":
        raise ContractProblem(f"the ONNX model's input is {inputs[0].type}, expected tensor(float) (float32)")
    shape = inputs[0].shape
    if not shape:
        raise ContractProblem(f"the ONNX model's input is not a batch of tensors; export it like this:\n{ONNX_RECIPE}")
    if isinstance(shape[0], int):
        raise ContractProblem(
            f"the batch dimension is fixed at {shape[0]} in this ONNX model; Podium feeds batches of any size. "
            f"Export it with a dynamic batch (dynamic_shapes):\n{ONNX_RECIPE}")
    return session


def tiny_onnx() -> bytes:
    """A small ONNX CNN (conv, relu, pool, gemm, softmax) built in memory, for warming ONNX Runtime up."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(2, np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((2 * 13 * 13, 3)).astype(np.float32), "fc"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "fc"], ["m"]),
             helper.make_node("Add", ["m", "fb"], ["a"]),
             helper.make_node("Softmax", ["a"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "warm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


def tiny_exported_program() -> bytes:
    """A small CNN exported with torch.export (dynamic batch) and saved into bytes, for warming the loader up."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(2 * 13 * 13, 3),
                              torch.nn.Softmax(dim=1)).eval()
    program = torch.export.export(net, (torch.zeros(2, 1, 28, 28),),
                                  dynamic_shapes={"input": {0: torch.export.Dim("batch")}})
    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()


def warm_up(threads: int = 1) -> dict:
    """Load and run one model of each non-TorchScript format, so no module or library loads after confinement.

    Returns the versions of what runs the models (torch, onnx, onnxruntime), for the provenance record.
    """
    import onnx
    import onnxruntime as ort
    import sympy  # noqa: F401  (torch.export's shape guards)

    batch = np.zeros((2, 1, 28, 28), np.float32)
    for data in (tiny_exported_program(), tiny_onnx()):
        loaded = load_model(data, device="cpu", threads=threads)
        loaded.run(batch)
        loaded.run(batch[:1])
    try:
        _onnx_session(b"\x08\x08", device="cpu", threads=threads)  # ONNX Runtime's error path, once
    except Exception:
        pass
    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__}
