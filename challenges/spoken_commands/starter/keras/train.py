"""Keras starter kit for spoken-commands: a small CNN on log-mel spectrograms in Keras 3 (torch backend), exported
to ONNX for Podium.

    pip install -r requirements.txt
    python train.py                 # train, print validation accuracy, write model.onnx
    podium check model.onnx --challenge spoken-commands
    podium submit model.onnx --challenge spoken-commands --wait
"""

import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported: no TensorFlow needed

import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SLUG = "spoken-commands"


class ClipCentring(keras.layers.Layer):
    """Subtract each clip's mean log energy: a gain is an offset in log-mel, so the model is blind to loudness."""

    def call(self, x):
        return x - keras.ops.mean(x, axis=(1, 2, 3), keepdims=True)


def build_model(input_shape, num_classes: int, std: float) -> keras.Model:
    """Conv2D -> MaxPooling2D blocks, then Dense layers and a Softmax: probabilities [B, num_classes]."""
    return keras.Sequential([
        keras.Input(shape=input_shape),  # channels first: [1, 40, 101] log-mel
        ClipCentring(),
        keras.layers.Rescaling(1.0 / std),
        keras.layers.Conv2D(32, 5, strides=(2, 2), padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(num_classes),
        keras.layers.Softmax(),
    ])


def load_data(path: Path, val_fraction: float, seed: int):
    """Return (x_train, y_train, x_val, y_val) from an npz with x [N, 1, n_mels, frames] and y [N]."""
    with np.load(path) as data:
        x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = max(1, int(round(len(y) * val_fraction)))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def train(args) -> keras.Model:
    """Train the CNN and return it; Keras prints the loss and validation accuracy per epoch."""
    keras.utils.set_random_seed(args.seed)
    x_train, y_train, x_val, y_val = load_data(Path(args.data), args.val_fraction, args.seed)
    if args.quick:
        x_train, y_train = x_train[: 3 * args.batch_size], y_train[: 3 * args.batch_size]
    num_classes = max(len(LABELS), int(y_train.max()) + 1)
    centred = x_train - x_train.mean(axis=(1, 2, 3), keepdims=True)
    model = build_model(x_train.shape[1:], num_classes, float(centred.std()))
    model.compile(optimizer=keras.optimizers.Adam(args.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    print(f"train {len(y_train)} rows, validation {len(y_val)}, input {list(x_train.shape[1:])}, {num_classes} classes")
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=1 if args.quick else args.epochs,
              validation_data=(x_val, y_val), verbose=2)
    _, acc = model.evaluate(x_val, y_val, verbose=0)
    print(f"validation accuracy {acc:.3f}")
    return model


def export(model: keras.Model, out: Path) -> None:
    """Write one self-contained ONNX file with a dynamic batch dimension (Podium's input name is read from it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's tracing notices about Keras internals
        model.export(str(out), format="onnx", verbose=False)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB)")


def check(out: Path, data: Path) -> None:
    """Run the grader's own checks on the export when Podium is installed."""
    try:
        from podium.worker.localcheck import check_model_file
    except ImportError:
        print(f"podium is not installed here; run: podium check {out} --challenge {SLUG}")
        return
    with np.load(data) as d:
        samples = d["x"][:8].astype(np.float32)
    challenge = {"input_shape": list(samples.shape[1:]), "labels": LABELS, "max_model_mb": 20}
    problems = check_model_file(out, challenge=challenge, samples=samples)
    for problem in problems:
        print(f"problem: {problem}")
    print("podium checks: " + ("FAILED" if problems else "passed"))


def main(argv=None) -> None:
    """Parse flags, train, export and check."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE / "train.npz"), help="public training data (x, y)")
    parser.add_argument("--out", default="model.onnx", help="where to write the ONNX model")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="a few batches only (smoke test)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    keras.config.set_image_data_format("channels_first")  # Podium feeds [B, 1, 40, 101]
    started = time.monotonic()
    model = train(args)
    print(f"training took {time.monotonic() - started:.0f} s")
    out = Path(args.out)
    export(model, out)
    check(out, Path(args.data))


if __name__ == "__main__":
    main()
