"""Autoencoders for representation learning: dense (the DEC/deep-GMM 500-500-2000)
or convolutional, plain denoising or variational, and their transformer.

``AutoencoderTransformer(variational=False)`` is the pretraining network of
Wang & Jiang's deep GMM; ``variational=True`` the VAE the JULE review asks to
compare with. ``transform`` returns the code (the mean for a VAE).
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from .._progress import progress_bar
from .._validation import check_features, check_finite_training, diverged_error, fit_guard
from ._inputs import input_scaling, network_input, new_network_input, resolve_image_shape
from ._networks import resolve_device
from ._persistence import NetworkPickleMixin
from ._training import embed

__all__ = ["AutoencoderTransformer", "Autoencoder", "build_autoencoder"]


def _mlp(dims, last_activation):
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2 or last_activation:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _ConvEncoder(nn.Module):
    """Three stride-2 convolutions (32, 64, 128 channels), then a linear layer."""

    def __init__(self, image_shape, out_dim):
        super().__init__()
        h, w, c = image_shape
        chans = (32, 64, 128)
        layers, in_ch = [], c
        self.sizes = [(h, w)]
        for ch in chans:
            layers += [nn.Conv2d(in_ch, ch, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            h, w = (h + 1) // 2, (w + 1) // 2
            self.sizes.append((h, w))
            in_ch = ch
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(in_ch * h * w, out_dim)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))


class _ConvDecoder(nn.Module):
    """The mirror of :class:`_ConvEncoder`: linear, then upsample + conv to the exact sizes."""

    def __init__(self, encoder, image_shape, code_dim):
        super().__init__()
        h, w, c = image_shape
        sizes = encoder.sizes  # [(H, W), ..., (h3, w3)]
        self.first = (128, *sizes[-1])
        self.head = nn.Linear(code_dim, 128 * sizes[-1][0] * sizes[-1][1])
        chans = (128, 64, 32)
        ups = []
        for i, size in enumerate(reversed(sizes[:-1])):
            out_ch = chans[i + 1] if i + 1 < len(chans) else c
            ups.append(nn.Upsample(size=size, mode="nearest"))
            ups.append(nn.Conv2d(chans[i], out_ch, 3, padding=1))
            if i + 1 < len(chans):
                ups.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*ups)

    def forward(self, z):
        return self.body(F.relu(self.head(z)).reshape(-1, *self.first))


class Autoencoder(nn.Module):
    """Encoder + decoder; with ``variational`` the encoder outputs ``(mu, log_var)``."""

    def __init__(self, encoder, decoder, code_dim, variational):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.code_dim = code_dim
        self.variational = variational

    def encode(self, x):
        """The code: ``mu`` for a VAE."""
        h = self.encoder(x)
        return h[:, : self.code_dim] if self.variational else h

    def forward(self, x, eps=None):
        """``(reconstruction, code, kl)``; ``kl`` is 0 for a plain autoencoder.

        ``eps``: standard normal noise of shape ``(n, code_dim)`` for the VAE's
        sample (drawn by the caller, from its own generator); None decodes the mean.
        """
        h = self.encoder(x)
        if not self.variational:
            return self.decoder(h), h, h.new_zeros(())
        mu, log_var = h[:, : self.code_dim], h[:, self.code_dim :].clamp(-20, 20)
        z = mu if eps is None else mu + eps * torch.exp(0.5 * log_var)
        kl = -0.5 * torch.mean(torch.sum(1 + log_var - mu**2 - log_var.exp(), dim=1))
        return self.decoder(z), mu, kl


def build_autoencoder(n_features, image_shape, *, code_dim, hidden_dims, architecture, variational):
    """The network for ``architecture`` in {"mlp", "conv"} (conv needs ``image_shape``)."""
    enc_out = 2 * code_dim if variational else code_dim
    if architecture == "conv":
        encoder = _ConvEncoder(image_shape, enc_out)
        decoder = _ConvDecoder(encoder, image_shape, code_dim)
    else:
        dims = [n_features, *hidden_dims]
        encoder = nn.Sequential(_mlp(dims, last_activation=True), nn.Linear(dims[-1], enc_out))
        decoder = nn.Sequential(
            _mlp([code_dim, *reversed(hidden_dims)], last_activation=True),
            nn.Linear(hidden_dims[0] if hidden_dims else code_dim, n_features),
        )
    return Autoencoder(encoder, decoder, code_dim, variational)


def reconstruction_error(recon, x):
    """Mean squared error per sample (summed over features, averaged over the batch)."""
    return (
        F.mse_loss(recon.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1), reduction="sum")
        / x.shape[0]
    )


def corrupt(x, rate, generator):
    """Masking noise: each input value is set to 0 with probability ``rate``."""
    if rate <= 0:
        return x
    keep = torch.rand(x.shape, generator=generator, device="cpu").to(x.device) >= rate
    return x * keep


class AutoencoderTransformer(
    NetworkPickleMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """A (denoising or variational) autoencoder; ``transform`` returns its code.

    The pretraining network of the deep GMM (Wang & Jiang): an encoder
    ``d -> 500 -> 500 -> 2000 -> n_components`` (ReLU except on the code) and
    its mirror as decoder, trained to reconstruct inputs corrupted by masking
    noise. ``architecture="conv"`` uses a convolutional encoder for images.
    With ``variational=True`` it is a VAE (Gaussian code, KL to N(0, I));
    ``transform`` then returns the mean code. Use it in a Pipeline for
    "AE + KMeans", "AE + GaussianMixture" or "VAE + GDLClustering".

    Parameters
    ----------
    n_components : int, default=10
        Size of the code.
    hidden_dims : tuple of int, default=(500, 500, 2000)
        Hidden layers of the dense encoder (the decoder mirrors them).
    architecture : {"auto", "mlp", "conv"}, default="mlp"
        ``"mlp"``: the dense network on flattened inputs (the paper's).
        ``"conv"``: convolutional encoder/decoder for images (needs image
        input or ``image_shape``). ``"auto"``: conv for images, else mlp.
    variational : bool, default=False
        Train a VAE instead of a denoising autoencoder.
    beta : float, default=1.0
        Weight of the KL term of the VAE.
    corruption : float, default=0.2
        Masking-noise rate of the denoising autoencoder (0 = plain autoencoder;
        not used by the VAE).
    epochs : int, default=50
        Training epochs (end to end; the paper trains layer by layer first).
    batch_size : int, default=256
        Samples per training step.
    learning_rate : float, default=1e-3
        Adam step size.
    image_shape : tuple of int or None, default=None
        ``(H, W[, C])`` of flat image rows (channels last), as in
        :class:`JULEClustering`. The values must be ints (Python or numpy;
        floats such as ``28.0`` are refused rather than truncated).
    device : str or torch.device, default="auto"
        ``"auto"``: CUDA when available (CUDA timings are not measured).
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batch order and noise; fixed seeds repeat on CPU.
    verbose : int, default=0
        Progress bar over epochs when > 0.

    Attributes
    ----------
    network_ : Autoencoder
        The trained encoder and decoder (eval mode).
    history_ : list of float
        Mean training loss of each epoch (reconstruction + beta * KL).
    image_shape_ : tuple or None
    device_ : torch.device
    n_features_in_ : int
        Number of features seen during ``fit`` (the flattened size of a
        sample).
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit``. Defined only when ``X``
        has feature names that are all strings (a pandas DataFrame, for
        example); ``transform`` then checks that it gets the same columns in
        the same order.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from skjule import AutoencoderTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> ae_km = make_pipeline(AutoencoderTransformer(epochs=2, random_state=0),
    ...                       KMeans(10, n_init=10, random_state=0))
    >>> ae_km.fit_predict(X).shape
    (1797,)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": ["array-like"],
        "architecture": [StrOptions({"auto", "mlp", "conv"})],
        "variational": ["boolean"],
        "beta": [Interval(Real, 0, None, closed="left")],
        "corruption": [Interval(Real, 0, 1, closed="left")],
        "epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "image_shape": ["array-like", None],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=10,
        *,
        hidden_dims=(500, 500, 2000),
        architecture="mlp",
        variational=False,
        beta=1.0,
        corruption=0.2,
        epochs=50,
        batch_size=256,
        learning_rate=1e-3,
        image_shape=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.architecture = architecture
        self.variational = variational
        self.beta = beta
        self.corruption = corruption
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.image_shape = image_shape
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, H, W) or (n_samples, H, W, C)
            Training samples; images are flattened (or kept as images for a
            convolutional network).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : AutoencoderTransformer
            The fitted estimator.
        """
        with fit_guard(self):
            X, sample_shape = check_features(self, X, reset=True, min_samples=2)
            rng = check_random_state(self.random_state)
            net, Xt, state = self._prepare(X, sample_shape, rng)
            history = train_autoencoder(
                net,
                Xt,
                state["device"],
                epochs=self.epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                corruption=self.corruption,
                beta=self.beta,
                rng=rng,
                verbose=self.verbose,
            )
            for key, value in state.items():
                setattr(self, key + "_", value)
            self.history_ = history
            self.network_ = net.eval()
        return self

    def _prepare(self, X, sample_shape, rng):
        """Network, input tensor and the fitted input description (no attribute set)."""
        image_shape = resolve_image_shape(sample_shape, self.image_shape)
        arch = self.architecture
        if arch == "auto":
            arch = "conv" if image_shape is not None else "mlp"
        if arch == "conv" and image_shape is None:
            raise ValueError(
                "architecture='conv' needs images: pass X as (n, H, W[, C]) or give "
                "image_shape; use architecture='mlp' for feature vectors."
            )
        hidden = tuple(int(h) for h in np.atleast_1d(self.hidden_dims))
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden_dims must be positive ints; got {self.hidden_dims!r}.")
        device = resolve_device(self.device)
        scaling = input_scaling(X)
        Xt = network_input(X, image_shape if arch == "conv" else None, *scaling)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.randint(2**31 - 1)))
            net = build_autoencoder(
                X.shape[1],
                image_shape,
                code_dim=self.n_components,
                hidden_dims=hidden,
                architecture=arch,
                variational=self.variational,
            ).to(device)
        state = dict(
            image_shape=image_shape if arch == "conv" else None,
            sample_shape=tuple(sample_shape),
            input_scaling=scaling,
            device=device,
            architecture=arch,
        )
        return net, Xt, state

    # ------------------------------------------------------------ transform
    def _network_tensor(self, X):
        return new_network_input(self, X)

    def transform(self, X):
        """The code of each sample (the mean code for a VAE).

        Parameters
        ----------
        X : array-like of the training samples' shape
            Samples to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components), float32
            The encoder's output for each sample.
        """
        Xt = self._network_tensor(X)  # checks fitted first
        return check_finite_training(
            embed(_Encode(self.network_), Xt, self.device_), self.learning_rate
        )

    def inverse_transform(self, codes):
        """Decode codes back to (flattened, original-scale) samples.

        Parameters
        ----------
        codes : array-like of shape (n_samples, n_components)
            Codes, e.g. from :meth:`transform`.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            The decoded samples, flattened, on the scale of the training data.
        """
        check_is_fitted(self, "network_")
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[1] != self.n_components:
            raise ValueError(
                f"codes must have shape (n_samples, {self.n_components}); got {codes.shape}."
            )
        out = embed(_Decode(self.network_), torch.from_numpy(codes), self.device_)
        out = (
            out.reshape(out.shape[0], -1)
            if self.image_shape_ is None
            else out.transpose(0, 2, 3, 1).reshape(out.shape[0], -1)
        )
        scale, mean, std = self.input_scaling_
        return (out.astype(np.float64) * std + mean) * scale

    # ---------------------------------------------------------- checkpoints
    def _fitted_state(self):
        """The fitted state as plain values and a state dict (for checkpoints)."""
        check_is_fitted(self, "network_")
        attributes = {
            k: v
            for k, v in vars(self).items()
            if k.endswith("_") and not k.startswith("_") and k not in ("network_", "device_")
        }
        if "feature_names_in_" in attributes:
            attributes["feature_names_in_"] = [str(f) for f in attributes["feature_names_in_"]]
        return {"attributes": attributes, "network": self.network_.state_dict()}

    def _load_fitted_state(self, state, device):
        """Become the fitted transformer :meth:`_fitted_state` described, on ``device``."""
        attributes = dict(state["attributes"])
        if "feature_names_in_" in attributes:
            attributes["feature_names_in_"] = np.asarray(
                attributes["feature_names_in_"], dtype=object
            )
        net = build_autoencoder(
            attributes["n_features_in_"],
            attributes["image_shape_"],
            code_dim=self.n_components,
            hidden_dims=tuple(int(h) for h in np.atleast_1d(self.hidden_dims)),
            architecture=attributes["architecture_"],
            variational=self.variational,
        )
        net.load_state_dict(state["network"])
        for key, value in attributes.items():
            setattr(self, key, value)
        self.device_ = device
        self.network_ = net.to(device).eval()
        return self

    @property
    def _n_features_out(self):
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class _Encode(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.encode(x)


class _Decode(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z):
        return self.net.decoder(z)


def train_autoencoder(
    net, X, device, *, epochs, batch_size, learning_rate, corruption, beta, rng, verbose=0
):
    """Adam on the reconstruction (+ beta KL) loss; returns the mean loss per epoch."""
    generator = torch.Generator().manual_seed(int(rng.randint(2**31 - 1)))
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    n = X.shape[0]
    history = []
    bar = progress_bar(total=epochs, desc="autoencoder epochs", enabled=verbose > 0)
    for _ in range(epochs):
        net.train()
        total, count = 0.0, 0
        perm = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = torch.from_numpy(perm[start : start + batch_size])
            if idx.numel() < 2 and n >= 2:
                continue
            xb = X.index_select(0, idx).to(device)
            if net.variational:
                eps = torch.randn((xb.shape[0], net.code_dim), generator=generator).to(device)
                recon, _, kl = net(xb, eps)
            else:
                recon, _, kl = net(corrupt(xb, corruption, generator))
            loss = reconstruction_error(recon, xb) + beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
        history.append(total / max(count, 1))
        if not np.isfinite(history[-1]):  # stop now: the next epochs would be wasted
            bar.close()
            raise diverged_error(
                learning_rate, what="The autoencoder's loss", where=f" in epoch {len(history)}"
            )
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    bar.close()
    if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        raise diverged_error(learning_rate, what="The autoencoder's weights")
    return history
