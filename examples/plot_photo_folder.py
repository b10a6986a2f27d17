"""
Clustering a folder of photos, end to end
=========================================

The whole path for your own photos: read a folder with
:func:`~skjule.datasets.load_image_folder`, turn every photo into a feature
vector with a network (:class:`~skjule.FeatureExtractor`), cluster the
vectors with :class:`~skjule.GDLClustering` (which finds the number of
clusters itself), look at one row of thumbnails per cluster, and sort the
photos into one folder per cluster.

The folder here is generated (red discs, green squares and blue triangles of
many sizes, 20 photos each) and the network is a tiny random CNN, so that the
example runs anywhere in seconds. For real photos, export a pretrained
network (ResNet, ConvNeXt, CLIP, ...) to a ``.pt`` file as shown in
:doc:`/features` and pass its path instead; :doc:`/photos` says what to
expect.
"""

import os
import shutil
import tempfile
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image, ImageDraw
from sklearn.metrics import normalized_mutual_info_score

from skjule import FeatureExtractor, GDLClustering, export_clusters, least_typical
from skjule.datasets import load_image_folder
from skjule.plotting import plot_cluster_montage

# %%
# A photo folder
# --------------
# Every photo has its own size and shape. The sub-folders are only there so
# that we can score the result at the end; your folder needs none.
rng = np.random.default_rng(0)
folder = tempfile.mkdtemp(prefix="skjule-photos-")
kinds = {"disc": (200, 40, 40), "square": (40, 160, 60), "triangle": (50, 70, 200)}
for kind, colour in kinds.items():
    os.makedirs(os.path.join(folder, kind))
    for i in range(20):
        w, h = (int(v) for v in rng.integers(48, 112, 2))
        im = Image.fromarray(rng.integers(200, 256, (h, w, 3), dtype=np.uint8))
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

# %%
# Load it
# -------
# The photos differ in size, so ``resize`` brings them to one (64x64 here;
# 224 for a typical pretrained network). ``photos.images`` is one array
# ``(n, 64, 64, 3)`` of uint8; ``photos.filenames`` are the paths relative to
# the folder, in the same order. A photo that cannot be read stops the load
# with its name; ``on_error="skip"`` leaves it out instead.
photos = load_image_folder(folder, resize=64)
print(photos.images.shape, photos.images.dtype, photos.filenames[:2])

# %%
# A network
# ---------
# Random convolutions, then global average pooling to 16 features, exported
# to TorchScript as you would export a pretrained network.
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(3, 16, 5, stride=2),
    torch.nn.ReLU(),
    torch.nn.Conv2d(16, 16, 3, stride=2),
    torch.nn.ReLU(),
    torch.nn.AdaptiveAvgPool2d(1),
    torch.nn.Flatten(),
)
model_file = os.path.join(tempfile.mkdtemp(prefix="skjule-model-"), "tiny.pt")
with warnings.catch_warnings():  # recent torch versions deprecate TorchScript; it works
    warnings.simplefilter("ignore", DeprecationWarning)
    torch.jit.trace(net.eval(), torch.rand(1, 3, 64, 64)).save(model_file)

# %%
# Features, then clusters
# -----------------------
# ``mean``/``std`` normalise the pixels as the network expects (a pretrained
# network documents its own). ``n_clusters=None`` lets the merge history
# choose the number of clusters; give a number when you know it (the
# default is 10).
features = FeatureExtractor(model_file, mean=0.5, std=0.25, l2_normalize=True)
X = features.fit_transform(photos.images)
gdl = GDLClustering(n_clusters=None, random_state=0).fit(X)
labels = gdl.labels_
print(f"{X.shape[1]}-d features; {gdl.n_clusters_} clusters found")

# The sub-folders are the truth here; your photos have none.
truth = np.array([name.split(os.sep)[0] for name in photos.filenames])
print(f"NMI with the shapes: {normalized_mutual_info_score(truth, labels):.2f}")
for k in range(gdl.n_clusters_):
    kinds_in_k, counts = np.unique(truth[labels == k], return_counts=True)
    print(f"cluster {k}: " + ", ".join(f"{c} {s}" for s, c in zip(kinds_in_k, counts)))

# %%
# One row of thumbnails per cluster
# ---------------------------------
# The first thing to do with a clustering of photos: look at it. The rule
# that chose the number of clusters may split a group that you see as one
# (here it can separate photos by the size of their shape).
plot_cluster_montage(photos.images, labels, n_per_cluster=10)
plt.show()

# %%
# When you know how many groups you want
# --------------------------------------
# Say so: ``n_clusters=3`` continues the merges down to three clusters. (A
# hierarchy can be cut at more clusters than a fit stopped at with
# :func:`~skjule.cut_hierarchy`, never at fewer: refit for fewer.)
gdl3 = GDLClustering(n_clusters=3, random_state=0).fit(X)
labels = gdl3.labels_
print(f"NMI with the shapes, 3 clusters: {normalized_mutual_info_score(truth, labels):.2f}")
plot_cluster_montage(photos.images, labels, n_per_cluster=10)
plt.show()

# %%
# One folder per cluster
# ----------------------
# :func:`~skjule.export_clusters` links (or, with ``copy=True``, copies) every
# photo into ``cluster_00/``, ``cluster_01/``, ..., with the members farthest
# from their cluster's centre in a ``_least_typical/`` sub-folder: the ones
# to check first. :func:`~skjule.write_report` writes the same as one HTML
# page, and ``skjule cluster PHOTOS -k auto --export sorted/`` does all of
# this from a shell (:doc:`/cli`).
marked, distances = least_typical(X, labels, fraction=0.1, return_distances=True)
out = os.path.join(tempfile.mkdtemp(prefix="skjule-sorted-"), "sorted")
paths = [os.path.join(folder, name) for name in photos.filenames]
export_clusters(paths, labels, out, least_typical=marked, distances=distances)
for sub in sorted(os.listdir(out)):
    if os.path.isdir(os.path.join(out, sub)):
        odd = os.listdir(os.path.join(out, sub, "_least_typical"))
        n_links = sum(len(files) for _, _, files in os.walk(os.path.join(out, sub)))
        print(f"{sub}/: {n_links} photos, least typical: {sorted(odd)}")

# %%
# The generated folders are removed; your photos stay where they are.
for path in (folder, os.path.dirname(model_file), os.path.dirname(out)):
    shutil.rmtree(path)
