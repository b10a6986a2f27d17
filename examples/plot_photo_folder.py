"""
Clustering a folder of photos with a network's features
=======================================================

The whole path for your own photos, on a generated folder: image files of
different sizes and shapes, listed with
:func:`~skjule.datasets.list_image_files`, streamed through a TorchScript
network by :class:`~skjule.FeatureExtractor` (decoded a batch at a time, so
the folder can be of any size) and clustered by
:class:`~skjule.GDLClustering`, which finds the number of clusters itself.

The network here is a tiny random CNN made in the script, so that the example
runs anywhere in seconds; for real photos export a pretrained one (ResNet,
ViT, CLIP, ...) to a ``.pt`` file as shown in :doc:`/features` and pass its
path instead.
"""

import os
import tempfile
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image, ImageDraw
from sklearn.metrics import normalized_mutual_info_score
from sklearn.pipeline import Pipeline

from skjule import FeatureExtractor, GDLClustering
from skjule.datasets import ImageStream, list_image_files
from skjule.plotting import plot_cluster_montage

# %%
# A photo folder: red discs, green squares and blue triangles on a light,
# noisy background, 20 of each, every photo with its own size and shape.
rng = np.random.default_rng(0)
folder = tempfile.mkdtemp(prefix="skjule-photos-")
kinds = {"disc": (200, 40, 40), "square": (40, 160, 60), "triangle": (50, 70, 200)}
for kind, colour in kinds.items():
    os.makedirs(os.path.join(folder, kind))
    for i in range(20):
        w, h = (int(v) for v in rng.integers(48, 112, 2))
        background = rng.integers(200, 256, (h, w, 3), dtype=np.uint8)
        im = Image.fromarray(background)
        r = int(min(w, h) * rng.uniform(0.3, 0.45))
        cx, cy = int(rng.integers(r, w - r + 1)), int(rng.integers(r, h - r + 1))
        shade = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in colour)
        draw = ImageDraw.Draw(im)
        if kind == "disc":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=shade)
        elif kind == "square":
            draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=shade)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=shade)
        im.save(os.path.join(folder, kind, f"{i:02d}.jpg"), quality=90)

files = list_image_files(folder)
truth = [os.path.basename(os.path.dirname(f)) for f in files]
print(f"{len(files)} photos in {folder}")

# %%
# A tiny network, exported to TorchScript as you would export a pretrained
# one: random convolutions, then global average pooling to 16 features.
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(3, 16, 5, stride=2),
    torch.nn.ReLU(),
    torch.nn.Conv2d(16, 16, 3, stride=2),
    torch.nn.ReLU(),
    torch.nn.AdaptiveAvgPool2d(1),
    torch.nn.Flatten(),
)
model_file = os.path.join(folder, "tiny.pt")
with warnings.catch_warnings():  # recent torch versions deprecate TorchScript; it works
    warnings.simplefilter("ignore", DeprecationWarning)
    torch.jit.trace(net.eval(), torch.rand(1, 3, 64, 64)).save(model_file)

# %%
# Features and clusters in one pipeline. Each photo is scaled so that it
# covers 64x64 and its centre is cut out (``resize="crop"``: no distortion);
# ``mean``/``std`` normalise the pixels as the network expects.
pipe = Pipeline(
    [
        (
            "features",
            FeatureExtractor(
                model_file, input_size=64, resize="crop", mean=0.5, std=0.25, l2_normalize=True
            ),
        ),
        ("cluster", GDLClustering(n_clusters=None, random_state=0)),
    ]
)
labels = pipe.fit_predict(files)
print(
    f"{pipe['cluster'].n_clusters_} clusters found; NMI with the shapes: "
    f"{normalized_mutual_info_score(truth, labels):.2f}"
)
for k in np.unique(labels):
    members = [truth[i] for i in np.flatnonzero(labels == k)]
    counts = {kind: members.count(kind) for kind in kinds if kind in members}
    print(f"cluster {k}: {len(members)} photos {counts}")

# %%
# The clusters as rows of thumbnails. The thumbnails come from the same
# streamed reader, this time padded (``resize="pad"``) so that every photo
# is shown whole.
thumbs = np.concatenate(
    [b.images for b in ImageStream(files, size=48, resize="pad", pad_value=1.0)]
)
plot_cluster_montage(thumbs, labels, n_per_cluster=10)
plt.show()

# %%
# The generated folder is removed; your photos stay where they are.
import shutil  # noqa: E402

shutil.rmtree(folder)
