"""Backbones: the paper's CNN (depth from the image size) and an MLP for vectors.

The CNN of JULE (Caffe/Torch code) is a stack of blocks
``conv 5x5 (stride 1, no padding, 50 channels) -> BatchNorm -> ReLU -> 2x2 max-pool``
until the feature map is about 10x10, then a linear layer to 160 units and
L2 normalisation. The pool of a block is skipped when the convolution already
brings the map to 10 or below (MNIST 28x28: 28 -> 24 -> 12 -> 8, two convs and
one pool). Images smaller than 5 pixels get a padded convolution.
"""

import copy
import io
import warnings

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "conv_plan",
    "build_cnn",
    "build_mlp",
    "copy_module",
    "Embedder",
    "FrozenModule",
    "resolve_device",
    "script_from_bytes",
    "script_to_bytes",
    "wrap_backbone",
]

_TARGET = 10


def conv_plan(height, width):
    """Blocks for an image: a list of ``(padding, pool)``, and the final map size.

    >>> conv_plan(28, 28)
    ([(0, True), (0, False)], (8, 8))
    >>> conv_plan(16, 16)
    ([(0, True)], (6, 6))
    >>> conv_plan(128, 128)[1]
    (8, 8)
    """
    h, w = int(height), int(width)
    plan = []
    while True:
        pad = 0 if min(h, w) >= 5 else 2
        h, w = h - 4 + 2 * pad, w - 4 + 2 * pad
        pool = min(h, w) > _TARGET and min(h, w) >= 2
        if pool:
            h, w = h // 2, w // 2
        plan.append((pad, pool))
        if min(h, w) <= _TARGET:
            return plan, (h, w)


class Embedder(nn.Module):
    """A body followed by a linear head and L2 normalisation."""

    def __init__(self, body, body_dim, embedding_dim):
        super().__init__()
        self.body = body
        self.head = nn.Linear(body_dim, embedding_dim)

    def forward(self, x):
        z = self.head(torch.flatten(self.body(x), 1))
        return F.normalize(z, dim=1)


def _init_gaussian(module, std=0.01):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)


def build_cnn(image_shape, embedding_dim=160, channels=50):
    """The paper's CNN for images of ``image_shape = (H, W, C)``.

    Input tensors are ``(batch, C, H, W)``.
    """
    h, w, c = image_shape
    plan, (fh, fw) = conv_plan(h, w)
    layers = []
    in_ch = c
    for pad, pool in plan:
        layers += [
            nn.Conv2d(in_ch, channels, 5, padding=pad),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(nn.MaxPool2d(2))
        in_ch = channels
    model = Embedder(nn.Sequential(*layers), channels * fh * fw, embedding_dim)
    _init_gaussian(model)
    return model


def build_mlp(n_features, embedding_dim=160, hidden=512):
    """An MLP backbone for plain feature vectors: d -> 512 -> BN -> ReLU -> 160 -> L2."""
    body = nn.Sequential(
        nn.Linear(n_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)
    )
    model = Embedder(body, hidden, embedding_dim)
    _init_gaussian(model)
    return model


def script_to_bytes(module):
    """A TorchScript module as the bytes ``torch.jit.save`` writes."""
    buf = io.BytesIO()
    with warnings.catch_warnings():  # torch >= 2.9 deprecates TorchScript; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(module, buf)
    return buf.getvalue()


def script_from_bytes(data):
    """The TorchScript module :func:`script_to_bytes` saved, on the CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(io.BytesIO(data), map_location="cpu")


def _outer_scripts(module):
    """The TorchScript modules in ``module`` that are not inside another one."""
    if isinstance(module, torch.jit.ScriptModule):
        yield module
    else:
        for child in module.children():
            yield from _outer_scripts(child)


def copy_module(module):
    """A deep copy of ``module`` whose parameters can be trained and frozen.

    ``copy.deepcopy`` of a TorchScript module clones its parameters into
    non-leaf tensors, which an optimiser refuses and ``requires_grad_`` cannot
    change: TorchScript parts (the module itself or submodules) are copied by
    a ``torch.jit.save`` / ``torch.jit.load`` round trip, the rest by
    ``copy.deepcopy``.
    """
    memo = {id(s): script_from_bytes(script_to_bytes(s)) for s in _outer_scripts(module)}
    return copy.deepcopy(module, memo)


class FrozenModule(nn.Module):
    """A module that is never trained: no gradients, always in eval mode.

    Its parameters get ``requires_grad=False`` (an optimiser given them leaves
    them alone: they never receive a gradient), it runs under
    ``torch.no_grad()`` and ``train()`` keeps it in eval mode, so BatchNorm
    statistics and dropout stay frozen while the modules around it train.
    """

    def __init__(self, module):
        super().__init__()
        self.module = module
        for p in module.parameters():  # TorchScript modules refuse module.requires_grad_
            p.requires_grad_(False)
        module.eval()

    def train(self, mode=True):
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, x):
        with torch.no_grad():
            return self.module(x)


def wrap_backbone(backbone, image_shape, n_features, embedding_dim, freeze=False):
    """A user's module (or a builder of one) + linear head + L2 normalisation.

    A module is copied (:func:`copy_module`, TorchScript included), so the
    one passed in is never trained. A dry run on two zero inputs checks that
    it maps ``(batch, ...)`` to ``(batch, d)`` and finds ``d``. With
    ``freeze``, the backbone is wrapped in :class:`FrozenModule`: only the
    head trains.
    """
    in_shape = (
        (n_features,) if image_shape is None else (image_shape[2], image_shape[0], image_shape[1])
    )
    if isinstance(backbone, nn.Module):
        body = copy_module(backbone)
    else:
        body = backbone(in_shape)
        if not isinstance(body, nn.Module):
            raise ValueError(
                f"backbone(input_shape) must return a torch.nn.Module; got {type(body).__name__}."
            )
        if not all(p.is_leaf for p in body.parameters()):
            raise ValueError(
                "The module backbone(input_shape) returned has parameters that are not leaf "
                "tensors, so they can be neither trained nor frozen (copy.deepcopy of a "
                "TorchScript module makes such copies). Return the module torch.jit.load "
                "gives, or pass it as backbone: JULE copies it properly."
            )
    body = body.to("cpu")
    was_training = body.training
    body.eval()
    try:
        with torch.no_grad():
            out = body(torch.zeros((2, *in_shape)))
    except Exception as exc:
        raise ValueError(
            "The backbone failed on a batch of inputs of shape "
            f"(2, {', '.join(map(str, in_shape))}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        body.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"The backbone must return a (batch, features) tensor; for a batch of 2 it "
            f"returned {shape}. End it with torch.nn.Flatten() (or pooling) so that it "
            "outputs one feature vector per sample."
        )
    model = Embedder(FrozenModule(body) if freeze else body, int(out.shape[1]), embedding_dim)
    _init_gaussian(model.head)
    return model


def resolve_device(device):
    """``"auto"`` -> CUDA when available, else CPU; anything else via ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA but torch.cuda.is_available() is False "
            "(no GPU, or a CPU-only torch build). Use device='cpu' or 'auto'."
        )
    return dev
