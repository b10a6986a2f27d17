"""A network skjule trained itself, used frozen on another data set (issue 26's demonstration).

JULE is trained on USPS (defaults). Its CNN is exported to a TorchScript file,
exactly as a user exports a pretrained torchvision/timm model, and MNIST-test
(brought to USPS's layout: the central 20x20 pixels of each 28x28 digit,
resized to 16x16) is embedded with it through ``FeatureExtractor`` and
clustered. Against, in the same process:

- KMeans and GDLClustering on the target's pixels (no learned features);
- the frozen TorchScript features + GDLClustering / KMeans (no training on
  the target at all);
- JULEClustering with the USPS network as ``backbone`` kept frozen
  (``freeze_backbone=True``: only the linear head trains on the target);
- the same backbone fine-tuned (``freeze_backbone=False``);
- JULEClustering trained from scratch on the target.

    python benchmarks/bench_transfer.py --data-home ../shared/datasets \
        --output benchmarks/results/transfer.md
"""

import os
import tempfile

import numpy as np
import torch
from sklearn.cluster import KMeans

from skjule import FeatureExtractor, GDLClustering, JULEClustering

import _common as C


def usps_layout(images):
    """MNIST digits (28x28, the digit in the central 20x20) as USPS's 16x16
    frame-filling digits, in [0, 1]: bilinear, antialiased."""
    x = torch.as_tensor(np.asarray(images)[:, 4:24, 4:24], dtype=torch.float32) / 255.0
    x = torch.nn.functional.interpolate(
        x[:, None], size=(16, 16), mode="bilinear", antialias=True, align_corners=False
    )
    return x[:, 0].numpy()


def main():
    p = C.parser(__doc__, ["usps"], choices=["usps"])
    p.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="first N images of each set only (a quick check)",
    )
    args = p.parse_args()
    seed = args.seed
    Xs, ys = C.load(args.data_home, "usps")
    Xm, ym = C.load(args.data_home, "mnist-test")
    if args.max_samples:
        Xs, ys, Xm, ym = (a[: args.max_samples] for a in (Xs, ys, Xm, ym))
    Xt = usps_layout(Xm)
    k = 10
    n = len(ym)

    table = C.Table(["data set", "method", "NMI", "ACC", "seconds", "peak MB"])
    C.warm_up()
    table.header()

    source, t, peak, _ = C.measure(lambda: JULEClustering(k, random_state=seed).fit(Xs))
    table.add(
        "usps (source)",
        "JULEClustering (trained here, exported)",
        *C.scores(ys, source.labels_),
        t,
        peak,
    )

    # Export as a user exports any pretrained network: trace in eval mode.
    # JULE standardises its input with one global (scale, mean, std); the
    # FeatureExtractor gets the same normalisation as mean/std of [0, 1] pixels
    # (USPS's largest value is 1, so scale is 1).
    scale, mean, std = source.input_scaling_
    assert abs(scale - 1.0) < 1e-6, scale
    net = source.network_.to("cpu").eval()
    tmp = tempfile.mkdtemp(prefix="skjule-transfer-")
    path = os.path.join(tmp, "usps_jule.pt")
    torch.jit.trace(net, torch.zeros(1, 1, 16, 16)).save(path)
    extractor = FeatureExtractor(path, mean=mean, std=std, channels=1, batch_size=256)

    def frozen(cluster):
        def run():
            F = extractor.fit_transform(Xt)
            return cluster(F)

        return run

    target = f"mnist-test as 16x16 (n={n})"
    rows = [
        (
            "KMeans (pixels)",
            lambda: KMeans(k, n_init=10, random_state=seed).fit_predict(C.flat_l2(Xt)),
        ),
        ("GDLClustering (pixels)", lambda: GDLClustering(k, random_state=seed).fit_predict(Xt)),
        (
            "TorchScript features (frozen) + KMeans",
            frozen(lambda F: KMeans(k, n_init=10, random_state=seed).fit_predict(F)),
        ),
        (
            "TorchScript features (frozen) + GDLClustering",
            frozen(lambda F: GDLClustering(k, random_state=seed).fit_predict(F)),
        ),
        (
            "JULEClustering(backbone=USPS net, freeze_backbone=True)",
            lambda: JULEClustering(
                k, backbone=net, freeze_backbone=True, random_state=seed
            ).fit_predict(Xt),
        ),
        (
            "JULEClustering(backbone=USPS net) fine-tuned",
            lambda: JULEClustering(k, backbone=net, random_state=seed).fit_predict(Xt),
        ),
        (
            "JULEClustering from scratch",
            lambda: JULEClustering(k, random_state=seed).fit_predict(Xt),
        ),
    ]
    for label, run in rows:
        labels, t, peak, _ = C.measure(run)
        table.add(target, label, *C.scores(ym, labels), t, peak)

    C.write(
        args.output, "A network trained by skjule, exported and used frozen elsewhere", table, NOTES
    )


NOTES = """
Source: JULEClustering with defaults on USPS (9,298 16x16 digits), seed 0; its
`network_` traced with `torch.jit.trace` and saved, then loaded by
`FeatureExtractor(path, mean=..., std=...)` with JULE's input standardisation as
`mean`/`std`. Target: MNIST-test (10,000 digits), central 20x20 of each image
resized to 16x16 (USPS's layout). The `backbone=` rows pass the USPS
network (160-d output) as the backbone: JULE adds its own linear head; with
`freeze_backbone=True` only that head trains. JULE standardises the target
with the target's own global mean/std in those rows. "seconds" of the frozen
rows include the embedding pass.
"""


if __name__ == "__main__":
    main()
