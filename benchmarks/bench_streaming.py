"""Memory and speed of a folder of photos: the in-memory loader vs. streamed features.

Generates a folder of N JPEG files at 224x224 (random smooth colour images
from numpy, written with PIL, 1,000 per sub-folder; generation is not
measured), then measures each method in its own process (so that the peak
resident memory is the method's own):

* ``load_image_folder``: ``skjule.datasets.load_image_folder(folder)``, the
  whole folder as one uint8 array;
* ``ImageStream``: the files streamed through
  ``skjule.datasets.ImageStream(files, size=224)`` and dropped (decoding alone);
* ``FeatureExtractor``: ``FeatureExtractor(model.pt, input_size=224)`` over
  the streamed files, ``model.pt`` a small CNN defined here (4 convolutions
  + global average pooling, random weights, 64 features) exported with
  ``torch.jit.trace``;
* ``network alone``: the same network on as many batches of random pixels
  (no file read): the ceiling of the row above.

Peak memory is the child's ``VmHWM`` (peak resident set size, counted from the
child's start: ``ru_maxrss`` would include the parent's memory); "after imports" is its resident
memory before the method starts (Python, numpy, PIL, torch), included in the
peak. Prints one table and writes it (with the command and the machine) to
``--output``::

    python benchmarks/bench_streaming.py --n 50000 --output benchmarks/results/streaming.md

The folder goes under /tmp and is deleted at the end unless ``--keep``.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

METHODS = ("load_image_folder", "ImageStream", "FeatureExtractor", "network alone")


# ------------------------------------------------------------------ data


def _write_one(args):
    folder, i, size, seed = args
    from PIL import Image

    rng = np.random.default_rng([seed, i])
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    im = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
    sub = os.path.join(folder, f"{i // 1000:04d}")
    os.makedirs(sub, exist_ok=True)
    im.save(os.path.join(sub, f"{i:07d}.jpg"), quality=90)


def generate(folder, n, size, seed):
    t0 = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for i in range(0, n, 2000):
            list(
                pool.map(_write_one, [(folder, j, size, seed) for j in range(i, min(i + 2000, n))])
            )
    return time.perf_counter() - t0


def small_cnn_file(path):
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=4, padding=2),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()
    torch.jit.trace(net, torch.rand(1, 3, 224, 224)).save(path)


# ------------------------------------------------------------------ child


def _status_mb(field):
    """VmRSS (now) or VmHWM (peak) of this process, in MB. Unlike ru_maxrss, VmHWM
    starts afresh at exec: it never counts the parent's memory."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(method, folder, model, batch_size, n_workers):
    """Run one method; print a JSON line with its numbers."""
    import PIL.Image  # noqa: F401 - imported before the baseline is taken

    from skjule.datasets import ImageStream, list_image_files, load_image_folder

    if method in ("FeatureExtractor", "network alone"):
        import torch

        from skjule import FeatureExtractor
    baseline = _status_mb("VmRSS")
    t0 = time.perf_counter()
    if method == "load_image_folder":
        data = load_image_folder(folder, labels=None)
        n, shape = len(data.images), f"{data.images.shape} {data.images.dtype}"
    elif method == "ImageStream":
        files = list_image_files(folder)
        n = 0
        for batch in ImageStream(files, size=224, batch_size=batch_size, n_workers=n_workers):
            n += len(batch.indices)
        shape = "batches (64, 224, 224, 3) float32"
    elif method == "network alone":  # the same batches of random pixels: the ceiling
        net = torch.jit.load(model)
        files = list_image_files(folder)
        x = torch.rand(batch_size, 3, 224, 224)
        with torch.no_grad():
            for _ in range(0, len(files), batch_size):
                z = net(x)
        n, shape = len(files), f"batches {tuple(z.shape)}, no image decoded"
    else:
        files = list_image_files(folder)
        fe = FeatureExtractor(
            model, input_size=224, batch_size=batch_size, n_workers=n_workers, device="cpu"
        ).fit(files[:1])
        Z = fe.transform(files)
        n, shape = len(Z), f"{Z.shape} {Z.dtype}"
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    print(
        json.dumps(
            dict(
                method=method,
                n=n,
                seconds=seconds,
                peak_mb=peak,
                baseline_mb=baseline,
                output=shape,
            )
        )
    )


# ------------------------------------------------------------------ main


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=50_000, help="number of JPEG files")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--folder", help="where to write the images (default: a new folder under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the folder")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--n-workers", type=int, default=None, help="decoding threads (default: min(4, cpu count))"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", help="markdown file for the table")
    p.add_argument("--notes", default="", help="text appended to the notes")
    p.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.folder, args.model, args.batch_size, args.n_workers)

    from _common import machine_line

    command = "python benchmarks/bench_streaming.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    made = args.folder is None
    folder = args.folder or tempfile.mkdtemp(prefix="skjule-bench-stream-", dir="/tmp")
    work = tempfile.mkdtemp(prefix="skjule-bench-model-", dir="/tmp")
    rows = []
    try:
        gen = generate(folder, args.n, args.size, args.seed)
        mb = sum(e.stat().st_size for d in os.scandir(folder) for e in os.scandir(d)) / 2**20
        print(
            f"generated {args.n} JPEG files ({mb:.0f} MB) in {gen:.0f} s under {folder}", flush=True
        )
        model = os.path.join(work, "small_cnn.pt")
        small_cnn_file(model)
        for method in args.methods:
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--child",
                method,
                "--folder",
                folder,
                "--model",
                model,
                "--batch-size",
                str(args.batch_size),
            ]
            if args.n_workers is not None:
                cmd += ["--n-workers", str(args.n_workers)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
                rows.append(dict(method=method, n=args.n, failed=tail[0]))
                print(f"{method}: failed ({tail[0]})", flush=True)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{method}: {row['seconds']:.1f} s, peak {row['peak_mb']:.0f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if made and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    lines = [
        "| method | n | seconds | peak MB | MB after imports | images/s | output |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['method']} | {r['n']} | failed: {r['failed']} | | | | |")
            continue
        lines.append(
            f"| {r['method']} | {r['n']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | "
            f"{r['baseline_mb']:.0f} | {r['n'] / r['seconds']:.0f} | {r['output']} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(
                "# Streaming a folder of photos: memory and speed\n\n"
                f"```bash\n{command}\n```\n\n{machine_line()}\n\n"
                f"{args.n} JPEG files of {args.size}x{args.size} "
                f"({mb:.0f} MB on disk, generated in {gen:.0f} s, not measured). Each "
                "method runs in its own process; peak MB is its VmHWM (peak resident "
                "memory), 'after imports' its resident memory before it starts.\n\n"
                f"{table}\n"
            )
            if args.notes:
                f.write(f"\n{args.notes}\n")


if __name__ == "__main__":
    main()
