"""params and FLOPs are exact, and the same in TorchScript, torch.export and ONNX, on models counted by hand."""
from __future__ import annotations

import io
import os
import tempfile
import warnings

import pytest
import torch
from torch import nn

from podium.core.cost import (
    Cost,
    CostUnknown,
    onnx_cost,
    onnx_flops,
    onnx_params,
    torch_cost,
    torch_flops,
    torch_params,
)

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")  # torch.onnx.export(dynamo=True) writes the graph with it

SHAPE = (1, 28, 28)


class CNN(nn.Module):
    """conv(1->8, 3x3, pad 1) [bn] relu pool2, conv(8->16, 3x3, stride 2) relu, linear(16*6*6 -> 10)."""

    def __init__(self, bn: bool = False):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8) if bn else nn.Identity()
        self.c2 = nn.Conv2d(8, 16, 3, stride=2)
        self.fc = nn.Linear(16 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.bn(self.c1(x))) * 0.5, 2)  # the 0.5 is a scalar, not a tensor
        return self.fc(torch.flatten(torch.relu(self.c2(x)), 1))


# By hand: c1 gives 8x28x28 outputs of 1*3*3 MACs; pooled to 8x14x14, c2 gives 16x6x6 outputs of 8*3*3 MACs;
# fc 576 x 10 MACs.
MACS = 8 * 28 * 28 * 9 + 16 * 6 * 6 * 72 + 576 * 10
PARAMS = (8 * 9 + 8) + (16 * 72 + 16) + (576 * 10 + 10)
BN_PARAMS = 4 * 8  # weight, bias, running mean, running var; num_batches_tracked is an integer


def model(bn: bool = False) -> nn.Module:
    torch.manual_seed(0)
    m = CNN(bn)
    if bn:  # running statistics that are not the identity, so a folded export really changes the weights
        m.bn.running_mean.uniform_(-1, 1)
        m.bn.running_var.uniform_(0.5, 2)
    return m.eval()


def example(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, *SHAPE, generator=torch.Generator().manual_seed(1))


def torchscript(m: nn.Module):
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(m), buf)
        buf.seek(0)
        return torch.jit.load(buf)


def exported(m: nn.Module):
    ep = torch.export.export(m, (example(),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    buf.seek(0)
    return torch.export.load(buf)


def onnx_bytes(m: nn.Module, optimize: bool = False) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.onnx")
        torch.onnx.export(m, (example(),), path, dynamo=True, external_data=False, optimize=optimize,
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False)
        with open(path, "rb") as f:
            return f.read()


@pytest.fixture(scope="module")
def exports():
    """The plain and the BatchNorm CNN, each exported three ways (plus ONNX with the optimizer's folding)."""
    out = {}
    for bn in (False, True):
        m = model(bn)
        out[bn] = {"eager": m, "torchscript": torchscript(m), "exported_program": exported(m),
                   "onnx": onnx_bytes(m), "onnx_optimized": onnx_bytes(m, optimize=True)}
    return out


def cost_of(kind: str, obj) -> Cost:
    if kind.startswith("onnx"):
        return onnx_cost(obj, SHAPE)
    return torch_cost(obj, SHAPE)


def test_the_hand_count_is_what_torch_stores():
    m = model()
    assert sum(p.numel() for p in m.parameters()) == PARAMS


@pytest.mark.parametrize("kind", ["eager", "torchscript", "exported_program", "onnx", "onnx_optimized"])
def test_cnn_counts_are_exact_in_every_format(exports, kind):
    assert cost_of(kind, exports[False][kind]) == Cost(params=PARAMS, flops_per_input=2 * MACS)


@pytest.mark.parametrize("kind", ["eager", "torchscript", "exported_program", "onnx"])
def test_batchnorm_counts_its_four_vectors_in_every_unfolded_format(exports, kind):
    assert cost_of(kind, exports[True][kind]) == Cost(params=PARAMS + BN_PARAMS, flops_per_input=2 * MACS)


def test_an_export_that_folds_batchnorm_stores_and_counts_fewer_params(exports):
    # The ONNX optimizer folds BatchNorm into the convolution before it: the file then holds a smaller model,
    # and that file is what Podium counts. FLOPs do not change (BatchNorm counts 0 either way).
    proto = onnx.load_model_from_string(exports[True]["onnx_optimized"])
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)
    assert cost_of("onnx", exports[True]["onnx_optimized"]) == Cost(params=PARAMS, flops_per_input=2 * MACS)


def test_the_exports_compute_the_same_function(exports):
    x = example(3)
    want = exports[True]["eager"](x)
    with torch.inference_mode():
        assert torch.allclose(exports[True]["torchscript"](x), want, atol=1e-5)
        assert torch.allclose(exports[True]["exported_program"].module()(x), want, atol=1e-5)


class Zoo(nn.Module):
    """Depthwise and transposed convolutions, a 3-D matmul, a linear on 3-D input, attention-free."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 6, 5, stride=2, padding=2)
        self.dw = nn.Conv2d(6, 6, 3, groups=6, padding=1, bias=False)
        self.up = nn.ConvTranspose2d(6, 4, 2, stride=2)
        self.w = nn.Parameter(torch.randn(28, 12))
        self.fc = nn.Linear(12, 5)
        self.head = nn.Linear(4 * 28 * 5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(torch.relu(self.dw(self.c(x))))        # [B, 4, 28, 28]
        z = self.fc(torch.matmul(y, self.w))                  # [B, 4, 28, 12] -> [B, 4, 28, 5]
        return self.head(z.flatten(1))


ZOO_MACS = (6 * 14 * 14 * 25) + (6 * 14 * 14 * 9) + (6 * 14 * 14 * 4 * 4) + (4 * 28 * 28 * 12) \
    + (4 * 28 * 12 * 5) + (4 * 28 * 5 * 3)
ZOO_PARAMS = (6 * 25 + 6) + 6 * 9 + (6 * 4 * 4 + 4) + 28 * 12 + (12 * 5 + 5) + (560 * 3 + 3)


def test_onnx_counts_match_flop_counter_on_grouped_transposed_and_batched_products():
    torch.manual_seed(0)
    m = Zoo().eval()
    assert torch_flops(m, SHAPE) == 2 * ZOO_MACS
    assert torch_params(m) == ZOO_PARAMS
    assert onnx_cost(onnx_bytes(m), SHAPE) == Cost(ZOO_PARAMS, 2 * ZOO_MACS)
    assert torch_cost(exported(m), SHAPE) == Cost(ZOO_PARAMS, 2 * ZOO_MACS)
    assert torch_cost(torchscript(m), SHAPE) == Cost(ZOO_PARAMS, 2 * ZOO_MACS)


class WithConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.register_buffer("steps", torch.zeros(7, dtype=torch.long))  # an integer buffer does not count

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) + torch.tensor([1.0, 2.0, 3.0])     # a tensor made in forward is stored


def test_tensor_constants_count_and_integer_tensors_do_not():
    m = WithConstant().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(m, torch.zeros(2, 1, 2, 2))
    ep = torch.export.export(m, (torch.zeros(2, 1, 2, 2),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    want = Cost(params=4 * 3 + 3 + 3, flops_per_input=2 * 4 * 3)
    assert torch_cost(traced, (1, 2, 2)) == want
    assert torch_cost(ep, (1, 2, 2)) == want


def _graph(nodes, initializers, x_shape, y_shape):
    from onnx import TensorProto, helper

    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], initializer=initializers)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_constant_nodes_count_and_shape_constants_do_not():
    import numpy as np
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.ones((6, 4), np.float32), "w")
    nodes = [helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([-1, 6], np.int64))),
             helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(np.ones(4, np.float32))),
             helper.make_node("Constant", [], ["half"], value_float=0.5),
             helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["biased"]),
             helper.make_node("Mul", ["biased", "half"], ["y"])]
    m = _graph(nodes, [w], ["N", 2, 3], ["N", 4])
    assert onnx_params(m) == 6 * 4 + 4
    assert onnx_flops(m, (2, 3)) == 2 * 6 * 4


def test_shape_arithmetic_shape_inference_gives_up_on_is_evaluated_at_batch_one():
    import numpy as np
    from onnx import helper, numpy_helper

    # Reshape to a shape computed through a float round trip: shape inference gives up; the few ops feeding the
    # Reshape are evaluated at batch 1, without ONNX Runtime.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Cast", ["s"], ["sf"], to=1),
             helper.make_node("ReduceProd", ["sf"], ["nf"], keepdims=1),
             helper.make_node("Cast", ["nf"], ["n"], to=7),
             helper.make_node("Reshape", ["x", "n"], ["flat"]),
             helper.make_node("Unsqueeze", ["flat", "zero"], ["row"]),
             helper.make_node("MatMul", ["row", "w"], ["y"])]
    zero = numpy_helper.from_array(np.array([0], np.int64), "zero")
    w = numpy_helper.from_array(np.ones((6, 4), np.float32), "w")
    m = _graph(nodes, [w, zero], ["N", 2, 3], [1, 4])
    assert onnx_flops(m, (2, 3)) == 2 * 6 * 4


def test_an_onnx_graph_with_two_inputs_is_refused_with_a_reason():
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Add", ["x", "z"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    with pytest.raises(CostUnknown, match="2 inputs"):
        onnx_flops(helper.make_model(g), (2,))


def test_onnx_dims_known_only_at_run_time_are_read_from_a_batch_one_run():
    import numpy as np
    from onnx import helper, numpy_helper

    pytest.importorskip("onnxruntime")
    # NonZero's output length depends on the data: [2, ?] to shape inference; at batch 1 of zeros it is [2, 6].
    nodes = [helper.make_node("Flatten", ["x"], ["flat"]),
             helper.make_node("Greater", ["flat", "low"], ["mask"]),
             helper.make_node("NonZero", ["mask"], ["where"]),
             helper.make_node("Cast", ["where"], ["wf"], to=1),
             helper.make_node("MatMul", ["wf", "w"], ["mm"]),
             helper.make_node("ReduceSum", ["mm"], ["y"], keepdims=0)]
    low = numpy_helper.from_array(np.array(-1.0, np.float32), "low")
    w = numpy_helper.from_array(np.ones((6, 4), np.float32), "w")
    m = _graph(nodes, [low, w], ["N", 2, 3], [])
    assert onnx_flops(m, (2, 3)) == 2 * (2 * 4) * 6


def test_a_keras_cnn_exported_to_onnx_counts_like_the_same_torch_cnn(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("KERAS_BACKEND", "torch")  # read when keras is first imported: no TensorFlow here
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was imported earlier with the {keras.backend.backend()} backend")
    keras.config.set_image_data_format("channels_first")
    try:
        # The course's way: Conv2D, MaxPooling2D, Dense, Softmax; the same layers as CNN above, without the 0.5.
        m = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10), keras.layers.Softmax()])
        m(np.zeros((2, *SHAPE), np.float32))
        path = tmp_path / "keras.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.export(str(path), format="onnx", verbose=False)
    finally:
        keras.config.set_image_data_format("channels_last")
    assert m.count_params() == PARAMS
    assert onnx_cost(path.read_bytes(), SHAPE) == Cost(params=PARAMS, flops_per_input=2 * MACS)


def test_warm_up_takes_the_shape_folding_path_so_a_confined_child_needs_no_import():
    import sys

    from podium.core import cost

    cost.warm_up()
    assert "onnx.reference" in sys.modules and "onnx.inliner" in sys.modules
