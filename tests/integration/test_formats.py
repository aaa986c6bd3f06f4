"""torch.export archives and ONNX beside TorchScript, through the confined scoring child: exact scores, clear refusals."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from podium.core.modelformat import EXPORTED_PROGRAM_RECIPE, FORMATS, ONNX_RECIPE
from podium.worker.localcheck import check_model_file
from tests.support.devices import scored_on
from tests.support.models import exported_bytes, model_bytes, onnx_bytes, small_cnn

N, C = 200, 10


class Net(torch.nn.Module):
    """Conv, BatchNorm, pooling, a linear head: what a student trains."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(6)
        self.fc = torch.nn.Linear(6 * 14 * 14, C)

    def forward(self, x):
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2), 1))


class Recurrent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(28, 16, batch_first=True)
        self.fc = torch.nn.Linear(16, C)

    def forward(self, x):
        seq, _ = self.lstm(x.squeeze(1))
        return torch.softmax(self.fc(seq[:, -1]), dim=1)


class TwoArgs(torch.nn.Module):
    def forward(self, x, y):
        return torch.zeros(x.shape[0], C) + y.sum()


class BatchMixing(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(28 * 28, C)

    def forward(self, x):
        return self.fc(torch.flatten(x - x.mean(dim=0, keepdim=True), 1))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    x = np.random.default_rng(5).random((N, 1, 28, 28), dtype=np.float32)
    path = d / "test.npz"
    np.savez(path, x=x, y=np.arange(N) % C)
    return str(path), x


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(11)
    m = Net()
    with torch.no_grad():  # BatchNorm statistics that are not the identity, as after training
        m.bn.running_mean.uniform_(-0.2, 0.2)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _write(tmp_path, name, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _run(pool, data, path, **kw):
    return pool.run(model_path=path, inputs_path=data[0], inputs_key="formats", num_classes=C, time_limit_s=30,
                    memory_limit_mb=1024, **kw)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_scores_what_the_model_computes(pool, data, tmp_path, net, fmt):
    path = _write(tmp_path, "upload.bin", model_bytes(fmt, net))  # the name says nothing about the format
    r = _run(pool, data, path)
    assert r.ok, r.reason
    assert r.format == fmt
    assert r.device == (scored_on() if fmt != "onnx" else "cpu")
    with torch.inference_mode():
        expected = net(torch.from_numpy(data[1])).numpy()
    np.testing.assert_allclose(r.scores, expected, rtol=1e-4, atol=1e-4)
    assert (r.scores.argmax(1) == expected.argmax(1)).all()


def test_one_model_three_ways_same_predictions(pool, data, tmp_path, net):
    preds = {}
    for fmt in FORMATS:
        r = _run(pool, data, _write(tmp_path, f"{fmt}.bin", model_bytes(fmt, net)), batch_size=32)
        assert r.ok, (fmt, r.reason)
        preds[fmt] = r.scores.argmax(1)
    assert (preds["exported_program"] == preds["torchscript"]).all()
    assert (preds["onnx"] == preds["torchscript"]).all()


@pytest.mark.parametrize("fmt", ["exported_program", "onnx"])
def test_recurrent_model_loads_nothing_lazily(pool, data, tmp_path, fmt):
    # After confinement no file can be opened: what an LSTM needs must have been loaded in the zygote.
    torch.manual_seed(4)
    m = Recurrent().eval()
    r = _run(pool, data, _write(tmp_path, "rnn.bin", model_bytes(fmt, m)))
    assert r.ok, r.reason
    with torch.inference_mode():
        np.testing.assert_allclose(r.scores, m(torch.from_numpy(data[1])).numpy(), rtol=1e-4, atol=1e-4)


def test_fixed_batch_pt2_fails_with_the_dynamic_shapes_recipe(pool, data, tmp_path, net):
    r = _run(pool, data, _write(tmp_path, "fixed.pt2", exported_bytes(net, dynamic=False)))
    assert not r.ok and r.format == "exported_program"
    assert "batch dimension is fixed at 2" in r.reason
    assert 'dynamic_shapes={"x": {0: torch.export.Dim("batch")}}' in r.reason
    assert EXPORTED_PROGRAM_RECIPE.splitlines()[2] in r.reason.splitlines()


def test_fixed_batch_onnx_fails_with_the_recipe(pool, data, tmp_path, net):
    r = _run(pool, data, _write(tmp_path, "fixed.onnx", onnx_bytes(net, dynamic=False)))
    assert not r.ok and r.format == "onnx"
    assert "batch dimension is fixed at 2 in this ONNX model" in r.reason
    assert ONNX_RECIPE.splitlines()[0] in r.reason


def test_pt2_with_two_arguments_is_refused(pool, data, tmp_path):
    program = torch.export.export(TwoArgs(), (torch.zeros(2, 1, 28, 28), torch.zeros(1)),
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}, "y": None})
    path = tmp_path / "two.pt2"
    torch.export.save(program, str(path))
    r = _run(pool, data, str(path))
    assert not r.ok and "must take one argument" in r.reason and "takes 2" in r.reason


def _onnx_model(inputs, outputs, nodes, inits=(), name="x") -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def _linear_onnx(input_name="keras_tensor", batch="batch") -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((28 * 28, C)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    nodes = [helper.make_node("Flatten", [input_name], ["f"]), helper.make_node("Gemm", ["f", "w", "b"], ["y"])]
    data = _onnx_model([helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 1, 28, 28])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, C])], nodes,
                       [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return data, w, b


def test_onnx_input_name_is_read_from_the_model(pool, data, tmp_path):
    model, w, b = _linear_onnx("keras_tensor")
    r = _run(pool, data, _write(tmp_path, "keras.onnx", model))
    assert r.ok, r.reason
    np.testing.assert_allclose(r.scores, data[1].reshape(N, -1) @ w + b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("where", ["weights.bin", "../weights.bin", "/etc/passwd"])
def test_onnx_external_data_is_refused_before_a_session(pool, data, tmp_path, where):
    model = onnx.load_model_from_string(_linear_onnx()[0])
    w = model.graph.initializer[0]
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for key, value in (("location", where), ("offset", "0"), ("length", str(28 * 28 * C * 4))):
        w.external_data.add(key=key, value=value)
    r = _run(pool, data, _write(tmp_path, "external.onnx", model.SerializeToString()))
    assert not r.ok and r.format == "onnx"
    assert "external data" in r.reason and where in r.reason and "external_data=False" in r.reason


def test_onnx_with_two_inputs_or_outputs_is_refused(pool, data, tmp_path):
    two_in = _onnx_model([helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", 1, 28, 28]) for n in "ab"],
                         [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 1, 28, 28])],
                         [helper.make_node("Add", ["a", "b"], ["y"])])
    r = _run(pool, data, _write(tmp_path, "two_in.onnx", two_in))
    assert not r.ok and "takes 2 inputs" in r.reason
    two_out = _onnx_model([helper.make_tensor_value_info("a", TensorProto.FLOAT, ["b", 1, 28, 28])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", 1, 28, 28]) for n in "yz"],
                          [helper.make_node("Identity", ["a"], ["y"]), helper.make_node("Identity", ["a"], ["z"])])
    r = _run(pool, data, _write(tmp_path, "two_out.onnx", two_out))
    assert not r.ok and "has 2 outputs" in r.reason


def test_onnx_wrong_output_shape_fails_like_any_format(pool, data, tmp_path):
    model, _, _ = _linear_onnx()
    r = pool.run(model_path=_write(tmp_path, "m.onnx", model), inputs_path=data[0], inputs_key="formats",
                 num_classes=3, time_limit_s=30, memory_limit_mb=1024)
    assert not r.ok and "output shape" in r.reason and "expected" in r.reason and ", 3]" in r.reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_podium_check_is_the_same_for_every_format(pool, tmp_path, fmt):
    challenge = {"max_model_mb": 5, "input_shape": [1, 28, 28], "labels": [str(i) for i in range(C)]}
    good = _write(tmp_path, f"good-{fmt}", model_bytes(fmt, small_cnn(seed=1)))
    assert check_model_file(good, challenge=challenge, pool=pool) == []
    torch.manual_seed(0)
    mixing = _write(tmp_path, f"mixing-{fmt}", model_bytes(fmt, BatchMixing()))
    problems = check_model_file(mixing, challenge=challenge, pool=pool)
    assert len(problems) == 1 and "scores change with the batch size" in problems[0], problems
    wrong = _write(tmp_path, f"wrong-{fmt}", model_bytes(fmt, small_cnn(seed=1, num_classes=4)))
    problems = check_model_file(wrong, challenge=challenge, pool=pool)
    assert problems and "output shape [8, 4], expected [8, 10]" in problems[0], problems
