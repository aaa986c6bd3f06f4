"""Starter kit for spoken-commands: train a small CNN on log-mel spectrograms and export it for Podium.

    python train.py                 # train, print validation accuracy, write model.pt2 (torch.export)
    podium check model.pt2 --challenge spoken-commands
    podium submit model.pt2 --challenge spoken-commands --wait

    python train.py --format onnx         # model.onnx instead (ONNX, scored with ONNX Runtime)
    python train.py --format torchscript  # model.pt (TorchScript: still accepted, deprecated by PyTorch)
"""

import argparse
import contextlib
import io
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
LABELS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SLUG = "spoken-commands"


class KeywordCNN(nn.Module):
    """Conv -> ReLU -> MaxPool blocks, then Linear layers; returns logits [B, num_classes]."""

    def __init__(self, input_shape, num_classes: int, std: float):
        super().__init__()
        channels = input_shape[0]
        # Normalisation lives inside the model, so the exported file takes raw log-mel features.
        self.register_buffer("std", torch.tensor(float(std)))
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).numel()
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(flat, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Subtracting each clip's mean log energy makes the model blind to loudness (a gain is an offset in log-mel).
        x = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / self.std
        return self.classifier(self.features(x))


def load_data(path: Path, val_fraction: float, seed: int):
    """Return (x_train, y_train, x_val, y_val) tensors from an npz with x [N, 1, n_mels, frames] and y [N]."""
    with np.load(path) as data:
        x, y = data["x"].astype(np.float32), data["y"].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_val = max(1, int(round(len(y) * val_fraction)))
    val, train = order[:n_val], order[n_val:]
    return torch.from_numpy(x[train]), torch.from_numpy(y[train]), torch.from_numpy(x[val]), torch.from_numpy(y[val])


def time_shift(x: torch.Tensor, max_frames: int) -> torch.Tensor:
    """Augment: roll each spectrogram along time by up to max_frames (words start anywhere in the clip)."""
    shifts = torch.randint(-max_frames, max_frames + 1, (x.shape[0],)).tolist()
    return torch.stack([torch.roll(row, s, dims=-1) for row, s in zip(x, shifts)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    """Return the share of rows whose argmax prediction equals the label."""
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(y), batch))
    return hits / len(y)


def train(args) -> nn.Module:
    """Train the CNN and return it, printing the loss and validation accuracy per epoch."""
    torch.manual_seed(args.seed)
    x_train, y_train, x_val, y_val = load_data(Path(args.data), args.val_fraction, args.seed)
    num_classes = max(len(LABELS), int(y_train.max()) + 1)
    centred = x_train - x_train.mean(dim=(1, 2, 3), keepdim=True)
    model = KeywordCNN(tuple(x_train.shape[1:]), num_classes, centred.std())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()  # softmax is in the loss; the model returns logits
    steps = len(y_train) // args.batch_size if not args.quick else 3
    print(f"train {len(y_train)} rows, validation {len(y_val)}, input {list(x_train.shape[1:])}, {num_classes} classes")
    for epoch in range(1 if args.quick else args.epochs):
        model.train()
        order = torch.randperm(len(y_train))
        total = 0.0
        started = time.monotonic()
        for step in range(steps):
            rows = order[step * args.batch_size : (step + 1) * args.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(time_shift(x_train[rows], 8)), y_train[rows])
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: loss {total / max(steps, 1):.3f}, "
              f"validation accuracy {accuracy(model, x_val, y_val):.3f} ({time.monotonic() - started:.1f} s)")
    return model.eval()


FORMATS = {"pt2": "model.pt2", "onnx": "model.onnx", "torchscript": "model.pt"}


def export(model: nn.Module, out: Path, fmt: str, example: torch.Tensor) -> None:
    """Save the model in one of the formats Podium accepts, with a dynamic batch dimension."""
    model = model.eval()
    batch = {"x": {0: torch.export.Dim("batch")}}  # "x": forward()'s argument; any batch size B >= 1
    if fmt == "pt2":  # what PyTorch recommends since TorchScript's deprecation
        program = torch.export.export(model, (example,), dynamic_shapes=batch)
        torch.export.save(program, str(out))
    elif fmt == "onnx":
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # the exporter's progress
            warnings.simplefilter("ignore", FutureWarning)  # and notices about torch's own internals
            torch.onnx.export(model, (example,), str(out), dynamo=True, external_data=False, dynamic_shapes=batch)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(model), str(out))
        print("note: PyTorch has deprecated TorchScript; the default --format pt2 is what it recommends")
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
    parser.add_argument("--format", choices=sorted(FORMATS), default="pt2",
                        help="pt2 (torch.export, default), onnx, or torchscript")
    parser.add_argument("--out", help="where to write the model (default: model.pt2, model.onnx or model.pt)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="a few batches only (smoke test)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    model = train(args)
    print(f"training took {time.monotonic() - started:.0f} s")
    out = Path(args.out or FORMATS[args.format])
    with np.load(args.data) as d:
        example = torch.from_numpy(d["x"][:2].astype(np.float32))
    export(model, out, args.format, example)
    check(out, Path(args.data))


if __name__ == "__main__":
    main()
