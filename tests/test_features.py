"""FeatureExtractor: frozen features from any torch network (issue 26, item 1).

A tiny TorchScript model is made here; a generated folder holds an
EXIF-rotated JPEG, odd sizes, a grey image among RGB and duplicates. Arrays and
files must give the same features; the cache must be hit (the model is not
called: counted by a wrapper module) and missed when the model or the
preprocessing changes; errors must say what is wrong and how to fix it.
JULE's ``freeze_backbone`` is tested at the end.
"""

import copy
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from torch import nn

from skjule import GDLClustering
from skjule._deep._features import FeatureExtractor
from skjule.datasets import list_image_files


def _exif(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def smooth(rng, h, w, c=3):
    small = rng.integers(0, 256, (4, 4, c), dtype=np.uint8)
    im = Image.fromarray(small if c == 3 else small[..., 0])
    return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC))


def tiny_net(in_channels=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 3, stride=2),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()


class Counting(nn.Module):
    """Counts the images the wrapped network sees (padding included)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.calls = 0
        self.images = 0

    def forward(self, x):
        self.calls += 1
        self.images += x.shape[0]
        return self.net(x)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    torch.jit.trace(tiny_net(), torch.rand(1, 3, 16, 16)).save(str(path))
    return str(path)


@pytest.fixture
def photos(tmp_path):
    """Odd sizes, an EXIF-rotated JPEG, a grey PNG among RGB, two duplicates."""
    rng = np.random.default_rng(0)
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(smooth(rng, 20, 30)).save(d / "a.png")
    Image.fromarray(smooth(rng, 24, 18)).save(d / "b_rot.jpg", quality=95, exif=_exif(6))
    Image.fromarray(smooth(rng, 17, 33, 1)).save(d / "c_grey.png")
    (d / "d_copy.png").write_bytes((d / "a.png").read_bytes())
    Image.fromarray(smooth(rng, 40, 25)).save(d / "sub" / "e.png")
    (d / "sub" / "f_copy.png").write_bytes((d / "a.png").read_bytes())
    return d


def _as_rgb_array(path):
    """What a user would pass as an array: the upright RGB pixels of the file."""
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


# ------------------------------------------------------------------ basics


def test_arrays_and_paths_give_the_same_features(photos, model_file):
    files = list_image_files(photos)
    fe = FeatureExtractor(model_file, input_size=16, batch_size=4)
    from_files = fe.fit_transform(files)
    assert from_files.shape == (6, 8) and from_files.dtype == np.float32
    assert fe.n_features_out_ == 8 and fe.n_channels_ == 3 and fe.input_size_ == (16, 16)
    for i, f in enumerate(files):  # each file alone, as an array of one image
        arr = fe.transform(_as_rgb_array(f)[None])
        np.testing.assert_allclose(arr[0], from_files[i], rtol=1e-5, atol=1e-6)
    # the grey file, as a grey array, is replicated the same way
    grey = np.asarray(Image.open(photos / "c_grey.png"))
    np.testing.assert_allclose(
        fe.transform(grey[None])[0],
        from_files[files.index(str(photos / "c_grey.png"))],
        rtol=1e-5,
        atol=1e-6,
    )
    # duplicates have identical features; the EXIF-rotated JPEG is used upright
    a, d, f = (files.index(str(photos / n)) for n in ("a.png", "d_copy.png", "sub/f_copy.png"))
    np.testing.assert_array_equal(from_files[a], from_files[d])
    np.testing.assert_array_equal(from_files[a], from_files[f])
    # a folder is its list_image_files
    np.testing.assert_array_equal(fe.transform(str(photos)), from_files)
    # a whole array of same-size images equals the files, batch by batch or not
    rng = np.random.default_rng(3)
    images = np.stack([smooth(rng, 22, 26) for _ in range(7)])
    paths = []
    for i, im in enumerate(images):
        paths.append(str(photos / f"same{i}.png"))
        Image.fromarray(im).save(paths[-1])
    np.testing.assert_allclose(fe.transform(images), fe.transform(paths), rtol=1e-5, atol=1e-6)


def test_pipeline_with_gdl(photos, model_file):
    pipe = Pipeline(
        [
            ("features", FeatureExtractor(model_file, input_size=16)),
            ("cluster", GDLClustering(None)),
        ]
    )
    files = list_image_files(photos)
    labels = pipe.fit_predict(files)
    assert labels.shape == (len(files),)
    # copies of one photo land in one cluster
    a, d, f = (files.index(str(photos / n)) for n in ("a.png", "d_copy.png", "sub/f_copy.png"))
    assert labels[a] == labels[d] == labels[f]
    names = pipe[0].get_feature_names_out()
    assert list(names) == [f"featureextractor{i}" for i in range(8)]
    # and on arrays, with a module instead of a file
    rng = np.random.default_rng(0)
    X = np.concatenate(
        [np.zeros((15, 12, 12, 3), np.uint8), np.full((15, 12, 12, 3), 255, np.uint8)]
    )
    X = np.clip(X + rng.integers(-20, 20, X.shape), 0, 255).astype(np.uint8)
    pipe = Pipeline([("features", FeatureExtractor(tiny_net())), ("cluster", GDLClustering(2))])
    labels = pipe.fit_predict(X)
    assert len(set(labels[:15])) == 1 and len(set(labels[15:])) == 1
    assert labels[0] != labels[-1]


def test_module_output_with_unit_spatial_dims_is_flattened_and_l2(model_file):
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1))  # (n, 5, 1, 1)
    X = np.random.default_rng(0).random((9, 10, 10, 3)).astype(np.float32)
    Z = FeatureExtractor(net, l2_normalize=True, batch_size=4).fit_transform(X)
    assert Z.shape == (9, 5)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, rtol=1e-5)


def test_channels_auto_detects_a_grey_model():
    net = tiny_net(in_channels=1)
    rgb = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    fe = FeatureExtractor(net).fit(rgb)
    assert fe.n_channels_ == 1
    grey = np.asarray([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])
    np.testing.assert_allclose(fe.transform(rgb), fe.transform(grey), rtol=1e-5, atol=1e-6)
    assert FeatureExtractor(tiny_net(), channels=3).fit(grey).n_channels_ == 3


def test_mean_std_and_batch_independence():
    net = tiny_net()
    X = np.random.default_rng(0).random((10, 12, 12, 3)).astype(np.float32)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    Z = FeatureExtractor(net, mean=mean, std=std, batch_size=4).fit_transform(X)
    x = (
        torch.from_numpy(X).permute(0, 3, 1, 2) - torch.tensor(mean).view(1, 3, 1, 1)
    ) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = net.eval()(x).numpy()
    np.testing.assert_allclose(Z, ref, rtol=1e-4, atol=1e-5)
    # one image alone gives what it gives among others
    fe = FeatureExtractor(net, mean=0.5, std=0.25, batch_size=4).fit(X)
    np.testing.assert_allclose(fe.transform(X[3:4])[0], fe.transform(X)[3], rtol=1e-5, atol=1e-6)


def test_module_mode_and_device_are_restored():
    net = tiny_net().train()
    fe = FeatureExtractor(net, device="cpu").fit(np.zeros((2, 12, 12, 3), np.uint8))
    assert net.training
    fe.transform(np.zeros((3, 12, 12, 3), np.uint8))
    assert net.training
    assert all(p.device.type == "cpu" for p in net.parameters())


def test_pickle_and_clone_with_a_file_model(photos, model_file):
    files = list_image_files(photos)
    fe = FeatureExtractor(model_file, input_size=16).fit(files)
    Z = fe.transform(files)
    back = pickle.loads(pickle.dumps(fe))
    np.testing.assert_array_equal(back.transform(files), Z)
    np.testing.assert_array_equal(clone(fe).fit_transform(files), Z)


def test_scripted_module_object_and_torch_export_file(photos, model_file, tmp_path):
    files = list_image_files(photos)
    ref = FeatureExtractor(model_file, input_size=16).fit_transform(files)
    scripted = torch.jit.load(model_file)
    fe = FeatureExtractor(scripted, input_size=16)
    np.testing.assert_array_equal(fe.fit_transform(files), ref)
    np.testing.assert_array_equal(clone(fe).fit_transform(files), ref)
    # a torch.export program (.pt2) with a dynamic batch dimension
    net = tiny_net()
    program = torch.export.export(
        net, (torch.rand(2, 3, 16, 16),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, str(tmp_path / "tiny.pt2"))
    Z = FeatureExtractor(str(tmp_path / "tiny.pt2"), input_size=16).fit_transform(files)
    np.testing.assert_allclose(Z, ref, rtol=1e-5, atol=1e-6)


def test_input_size_none_uses_the_images_size(model_file, tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(smooth(rng, 18, 20)).save(paths[-1])
    fe = FeatureExtractor(model_file).fit(paths)
    assert fe.input_size_ is None
    assert fe.transform(paths).shape == (3, 8)
    Image.fromarray(smooth(rng, 30, 20)).save(tmp_path / "other.png")
    with pytest.raises(ValueError, match="input_size= for FeatureExtractor"):
        fe.transform(paths + [str(tmp_path / "other.png")])


# ------------------------------------------------------------------ cache


def test_cache_hits_do_not_call_the_model(photos, tmp_path):
    files = list_image_files(photos)
    net = Counting(tiny_net())
    cache = tmp_path / "cache"
    fe = FeatureExtractor(net, input_size=16, batch_size=2, cache_dir=cache)
    fe.fit(files)
    net.calls = net.images = 0
    first = fe.transform(files)
    # 6 files, 4 distinct contents (a.png three times): 4 images embedded, 2 batches
    assert net.calls == 2
    stored = sorted(cache.rglob("*.npy"))
    assert len(stored) == 4
    for p in stored:
        v = np.load(p, allow_pickle=False)
        assert v.dtype == np.float32 and v.shape == (8,)
    assert not list(cache.rglob("*.tmp"))
    net.calls = 0
    second = fe.transform(files)
    assert net.calls == 0
    np.testing.assert_array_equal(first, second)
    # without the cache: the same features (the cache stores them exactly)
    np.testing.assert_allclose(
        FeatureExtractor(net, input_size=16).fit_transform(files), first, rtol=1e-5, atol=1e-6
    )
    # a renamed copy still hits
    (photos / "renamed.png").write_bytes((photos / "sub" / "e.png").read_bytes())
    net.calls = 0
    fe.transform([str(photos / "renamed.png")])
    assert net.calls == 0
    # l2_normalize is applied after the cache: still hits
    fe.set_params(l2_normalize=True)
    net.calls = 0
    Z = fe.transform(files)
    assert net.calls == 0
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, rtol=1e-5)


def test_cache_is_invalidated_by_model_and_preprocessing(photos, tmp_path, model_file):
    files = list_image_files(photos)
    net = Counting(tiny_net())
    cache = tmp_path / "cache"

    def misses(**params):
        params.setdefault("input_size", 16)
        fe = FeatureExtractor(net, cache_dir=cache, **params).fit(files)
        net.calls = 0
        fe.transform(files)
        return net.calls

    assert misses() == 1
    assert misses() == 0
    assert misses(mean=0.5) == 1
    assert misses(mean=0.5) == 0
    assert misses(resize="pad") == 1
    assert misses(input_size=15) == 1
    assert misses(interpolation="bicubic") == 1
    with torch.no_grad():  # new weights
        net.net[0].weight.add_(0.1)
    assert misses() == 1
    assert misses() == 0
    # BatchNorm statistics are part of the digest too
    net.net[1].running_mean.add_(1.0)
    assert misses() == 1
    # a file model gets its own entries; its digest is the file's sha256
    fe = FeatureExtractor(model_file, input_size=16, cache_dir=cache).fit(files)
    fe.transform(files)
    folders = [p for p in (cache / "skjule-features-v1").iterdir()]
    assert len(folders) == 8  # 7 module configurations + the file model
    assert all((f / "config.json").exists() for f in folders)


def test_cache_across_chunks_with_duplicates_and_bad_files(tmp_path, model_file):
    """batch_size=1: the input is hashed and embedded in chunks of 16 files."""
    rng = np.random.default_rng(5)
    files = []
    for i in range(20):
        files.append(str(tmp_path / f"{i:02d}.png"))
        Image.fromarray(smooth(rng, 12, 12)).save(files[-1])
    for i, j in ((18, 2), (5, 4)):  # copies: across chunks, within one
        (tmp_path / f"{i:02d}.png").write_bytes((tmp_path / f"{j:02d}.png").read_bytes())
    (tmp_path / "07.png").write_bytes(b"broken")
    (tmp_path / "17.png").write_bytes(b"broken")  # the same broken bytes, next chunk
    net = Counting(tiny_net())
    fe = FeatureExtractor(
        net, batch_size=1, cache_dir=tmp_path / "c", on_error="skip", verbose=1
    ).fit(files[:1])
    net.calls = 0
    with pytest.warns(UserWarning, match="Skipped 2 of 20"):
        Z = fe.transform(files)
    assert net.calls == 20 - 2 - 2  # no copy, no broken file reaches the network
    assert [s[0] for s in fe.skipped_] == [7, 17]
    kept = [i for i in range(20) if i not in (7, 17)]
    ref = FeatureExtractor(net, batch_size=1).fit(files[:1]).transform([files[i] for i in kept])
    np.testing.assert_allclose(Z, ref, rtol=1e-5, atol=1e-6)
    net.calls = 0
    with pytest.warns(UserWarning, match="Skipped 2 of 20"):
        np.testing.assert_array_equal(fe.transform(files), Z)
    assert net.calls == 0


def test_damaged_cache_entry_is_recomputed(photos, tmp_path):
    files = list_image_files(photos)[:2]
    net = Counting(tiny_net())
    cache = tmp_path / "cache"
    fe = FeatureExtractor(net, input_size=16, cache_dir=cache).fit(files)
    Z = fe.transform(files)
    entry = sorted(cache.rglob("*.npy"))[0]
    entry.write_bytes(b"not a npy file")
    net.calls = 0
    np.testing.assert_array_equal(fe.transform(files), Z)
    assert net.calls == 1
    assert np.load(entry, allow_pickle=False).shape == (8,)


def test_cache_works_for_arrays(tmp_path):
    net = Counting(tiny_net())
    X = np.random.default_rng(0).integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    fe = FeatureExtractor(net, cache_dir=tmp_path).fit(X)
    Z = fe.transform(X)
    net.calls = 0
    np.testing.assert_array_equal(fe.transform(X), Z)
    assert net.calls == 0


# ------------------------------------------------------------------ skipping


def test_unreadable_file_raise_or_skip(photos, model_file):
    (photos / "broken.png").write_bytes(b"this is no image")
    files = list_image_files(photos)
    bad = files.index(str(photos / "broken.png"))
    with pytest.raises(ValueError, match=r"Cannot read the image .*broken\.png"):
        FeatureExtractor(model_file, input_size=16).fit_transform(files)
    fe = FeatureExtractor(model_file, input_size=16, on_error="skip").fit(files)
    with pytest.warns(UserWarning, match=r"Skipped 1 of 7 .*broken\.png"):
        Z = fe.transform(files)
    assert Z.shape == (6, 8)
    assert [s[:2] for s in fe.skipped_] == [(bad, files[bad])]
    full = FeatureExtractor(model_file, input_size=16).fit_transform(
        [f for f in files if f != files[bad]]
    )
    np.testing.assert_allclose(Z, full, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ errors


def test_model_failing_on_the_dry_run(model_file):
    net = nn.Sequential(nn.Flatten(), nn.Linear(100, 4))  # wants 10x10 grey images
    with pytest.raises(
        ValueError,
        match=r"failed on a dry-run batch of zeros on "
        r"\(2, 3, 16, 16\).*\(2, 1, 16, 16\).*input_size",
    ):
        FeatureExtractor(net, input_size=16).fit(np.zeros((2, 16, 16), np.uint8))
    assert (
        FeatureExtractor(net, input_size=10).fit(np.zeros((2, 16, 16), np.uint8)).n_channels_ == 1
    )


def test_wrong_output_rank():
    fmap = nn.Conv2d(3, 4, 3)  # (n, 4, h, w): a feature map
    with pytest.raises(ValueError, match="feature map.*AdaptiveAvgPool2d"):
        FeatureExtractor(fmap, channels=3).fit(np.zeros((2, 8, 8, 3), np.uint8))

    class Tuple(nn.Module):
        def forward(self, x):
            return x.mean((2, 3)), x

    with pytest.raises(ValueError, match="returned a tuple, not a tensor"):
        FeatureExtractor(Tuple(), channels=3).fit(np.zeros((2, 8, 8, 3), np.uint8))

    class Scalar(nn.Module):
        def forward(self, x):
            return x.mean((1, 2, 3))

    with pytest.raises(ValueError, match=r"must return a \(batch, features\) tensor"):
        FeatureExtractor(Scalar(), channels=3).fit(np.zeros((2, 8, 8, 3), np.uint8))


def test_model_file_errors(tmp_path):
    X = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="no such file"):
        FeatureExtractor(str(tmp_path / "missing.pt")).fit(X)
    with pytest.raises(ValueError, match="is not a file"):
        FeatureExtractor(tmp_path).fit(X)
    state = tmp_path / "weights.pt"
    torch.save(tiny_net().state_dict(), state)
    with pytest.raises(ValueError, match=r"is not a TorchScript file .*torch\.jit\.trace"):
        FeatureExtractor(str(state)).fit(X)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="is not a TorchScript file"):
        FeatureExtractor(junk).fit(X)


def test_changed_model_file_after_unpickling(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.trace(tiny_net(), torch.rand(1, 3, 16, 16)).save(str(path))
    X = np.zeros((2, 16, 16, 3), np.uint8)
    blob = pickle.dumps(FeatureExtractor(str(path)).fit(X))
    torch.jit.trace(tiny_net(seed=1), torch.rand(1, 3, 16, 16)).save(str(path))
    with pytest.raises(ValueError, match="changed since this FeatureExtractor was fitted"):
        pickle.loads(blob).transform(X)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(input_size=0), "input_size"),
        (dict(input_size=(16, 16, 3)), "input_size must be"),
        (dict(input_size=(16.0, 16)), "input_size must be"),
        (dict(resize="zoom"), "resize"),
        (dict(crop_fraction=0), "crop_fraction"),
        (dict(interpolation="area"), "interpolation"),
        (dict(channels=2), "channels must be 'auto', 1 or 3"),
        (dict(mean=(0.5, 0.5)), "mean has 2 values but the model takes 3"),
        (dict(std=0), "std must be .* positive"),
        (dict(std=(1, -1, 1)), "std must be .* positive"),
        (dict(mean="red"), "mean"),
        (dict(batch_size=0), "batch_size"),
        (dict(on_error="ignore"), "on_error"),
        (dict(device="tpu-9"), "device"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        FeatureExtractor(tiny_net(), **params).fit(np.zeros((2, 16, 16, 3), np.uint8))


def test_bad_inputs():
    fe = FeatureExtractor(tiny_net()).fit(np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        fe.transform(np.zeros((2, 16, 16, 4)))
    with pytest.raises(ValueError, match="not a folder"):
        fe.transform("no/such/folder")
    with pytest.raises(ValueError, match="dtype"):
        fe.transform(np.zeros((2, 16, 16), complex))


# ------------------------------------------------------------------ JULE


def _two_groups():
    rng = np.random.default_rng(0)
    X = rng.random((40, 12, 12)).astype(np.float32)
    X[:20, :6] += 1.0
    return X


def _backbone():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
    )


def test_jule_freeze_backbone_trains_only_the_head():
    from skjule import JULEClustering

    X, bb = _two_groups(), _backbone()
    before = copy.deepcopy(bb.state_dict())
    frozen = JULEClustering(
        2, backbone=bb, freeze_backbone=True, epochs_per_period=2, random_state=0
    ).fit(X)
    body = frozen.network_.body.module
    after = body.state_dict()
    assert set(after) == set(before)
    for k in before:  # weights and BatchNorm statistics untouched
        assert torch.equal(after[k], before[k]), k
    assert not any(p.requires_grad for p in body.parameters())
    assert all(p.requires_grad for p in frozen.network_.head.parameters())
    frozen.network_.train()
    assert not body.training  # stays in eval mode when the rest trains
    assert frozen.labels_.shape == (40,)
    # the head did train: it differs from the one a 0-epoch fit starts with
    start = JULEClustering(
        2, backbone=bb, freeze_backbone=True, epochs_per_period=0, random_state=0
    ).fit(X)
    assert not torch.equal(start.network_.head.weight, frozen.network_.head.weight)

    tuned = JULEClustering(2, backbone=bb, epochs_per_period=2, random_state=0).fit(X)
    changed = tuned.network_.body.state_dict()
    assert not torch.equal(changed["0.weight"], before["0.weight"])
    assert not torch.equal(changed["1.running_mean"], before["1.running_mean"])
    for k in before:  # the module passed in is never trained
        assert torch.equal(bb.state_dict()[k], before[k])
    # a frozen fit pickles and predicts
    back = pickle.loads(pickle.dumps(frozen))
    np.testing.assert_array_equal(back.predict(X[:5]), frozen.predict(X[:5]))


def test_jule_freeze_backbone_is_a_parameter():
    from skjule import JULEClustering, JULETransformer

    assert JULEClustering().get_params()["freeze_backbone"] is False
    assert JULETransformer(freeze_backbone=True).get_params()["freeze_backbone"] is True
    with pytest.raises(ValueError, match="freeze_backbone"):
        JULEClustering(2, backbone=_backbone(), freeze_backbone="yes").fit(_two_groups())


@pytest.mark.skipif(not os.environ.get("SKJULE_TEST_CUDA"), reason="no GPU here")
def test_cuda_device():  # pragma: no cover - not run here: no GPU
    fe = FeatureExtractor(tiny_net(), device="cuda").fit(np.zeros((2, 16, 16, 3), np.uint8))
    assert fe.transform(np.zeros((3, 16, 16, 3), np.uint8)).shape == (3, 8)
