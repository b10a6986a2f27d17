"""Results a person can browse: an HTML report and a folder per cluster.

* :func:`write_report` writes ONE self-contained HTML page: per cluster its
  size and a grid of thumbnails (JPEG data URIs, most typical first), the
  least typical photos, the noise and the near-duplicate groups. No external
  resource, no JavaScript; written to a temporary file and renamed.
* :func:`export_clusters` writes one folder per cluster (``cluster_03/``,
  ``noise/``) of symbolic links to (or copies of) the photos under their own
  names, the least typical in ``cluster_03/_least_typical/``, an
  ``index.csv`` and a hidden manifest ``.skjule-export.json`` of what it
  wrote. A new folder is built under a temporary name and renamed into
  place; an existing one is only touched with ``overwrite=True``, and then
  only what the manifest says skjule wrote (and is unchanged) is removed.

The command line (``skjule cluster --report/--export``) uses the same code,
after checking every output path before the fit.
"""

import base64
import contextlib
import csv
import html
import io
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["export_clusters", "render_report", "write_report"]

MANIFEST = ".skjule-export.json"
INDEX = "index.csv"
LEAST_TYPICAL_DIR = "_least_typical"
NOISE_DIR = "noise"
_TMP_SUFFIX = ".skjule-tmp"
_MANIFEST_FORMAT = 1


# ================================================================ thumbnails


def _flatten_alpha(im):
    """An RGBA/LA/transparent-palette image on a white background, as RGB."""
    from PIL import Image

    rgba = im.convert("RGBA")
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def _display_image(im):
    """An opened, upright 8-bit PIL image as 'L' or 'RGB'."""
    if im.mode in ("L", "1"):
        return im.convert("L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return _flatten_alpha(im)
    try:
        return im.convert("RGB")
    except ValueError:  # e.g. LAB
        return im.convert("RGB", dither=None)


def _array_image(a):
    """One image array (H, W[, C]), any dtype, as a PIL image ('L' or 'RGB')."""
    from PIL import Image

    from ._montage import to_uint8

    a = to_uint8(np.asarray(a)[None])[0]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return Image.fromarray(a)
    if a.shape[-1] == 4:
        return _flatten_alpha(Image.fromarray(a, "RGBA"))
    if a.shape[-1] == 3:
        return Image.fromarray(a, "RGB")
    raise ValueError(f"an image must be grey, RGB or RGBA; got shape {a.shape}")


def _file_image(path, size):
    """The image file at ``path``, upright, reduced near ``size`` (JPEG: while decoding)."""
    from PIL import Image

    from .datasets._image_folder import _depth, _open_image, _upright

    with _open_image(path) as im:
        depth = _depth(im)
        if depth is None and im.format == "JPEG":
            im.draft(im.mode, (2 * size, 2 * size))
        im = _upright(im)
        if depth is None:
            return _display_image(im)
        a = np.asarray(im, dtype=np.float64)
        if a.ndim != 2:
            a = a.mean(axis=-1)
        lo, hi = a.min(), a.max()
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        return Image.fromarray(a.round().astype(np.uint8))


def _thumbnail(source, size):
    """(width, height, JPEG data URI) of one image (array or file), longer side <= size."""
    from PIL import Image

    im = (
        _file_image(source, size)
        if isinstance(source, (str, os.PathLike))
        else _array_image(source)
    )
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=75, optimize=True)
    w, h = im.size
    return w, h, "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ==================================================================== report

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 1.5em 3em;
color:#222;background:#fff}
h1{font-size:1.5em;margin:.8em 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .4em;
border-bottom:1px solid #ccc;padding-bottom:.2em}h3{font-size:1em;margin:1em 0 .3em}
.summary{color:#444}.count{color:#666;font-weight:normal;font-size:.85em}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em .9em}
.note{color:#555;font-size:.9em;margin:.2em 0 .5em}
.grid{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start}
figure{margin:0;width:SIZEpx;text-align:center}
figure .frame{width:SIZEpx;height:SIZEpx;display:flex;align-items:center;
justify-content:center;background:#f2f2f2;border:2px solid #f2f2f2}
figure img{max-width:SIZEpx;max-height:SIZEpx;image-rendering:pixelated}
figcaption{font-size:11px;color:#333;word-break:break-all;line-height:1.2;margin-top:2px}
figure.lt .frame{border-color:#d33}
.badge{display:inline-block;font-size:10px;padding:0 4px;border-radius:3px;color:#fff;
margin:1px}
.badge.lt{background:#d33}.badge.dup{background:#36c}
.missing{font-size:11px;color:#a00}
section.noise h2{color:#7a5200}
"""


def _esc(text):
    """Text for HTML: escaped; undecodable file-name bytes shown as U+FFFD."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return html.escape(text, quote=True)


def _check_report_inputs(images, labels, names, distances, least_typical, duplicate_groups):
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iub":
        raise ValueError(
            f"labels must be a 1-D array of integers; got dtype "
            f"{labels.dtype}, shape {labels.shape}."
        )
    labels = labels.astype(np.int64)
    n = len(labels)
    if isinstance(images, (str, os.PathLike)):
        raise TypeError("images must be an array of images or a list of image files, not one path.")
    if isinstance(images, np.ndarray) and images.dtype.kind not in "USO":
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
            raise ValueError(
                f"images must have shape (n, H, W) or (n, H, W, C) with C in "
                f"1, 3, 4; got {images.shape}."
            )
        sources = images
    else:
        sources = [os.fspath(p) for p in images]
    if len(sources) != n:
        raise ValueError(f"{len(sources)} images but {n} labels.")
    if names is None:
        names = (
            [str(p) for p in sources] if isinstance(sources, list) else [str(i) for i in range(n)]
        )
    names = [str(s) for s in names]

    def opt(a, what, dtype):
        if a is None:
            return None
        a = np.asarray(a, dtype=dtype)
        if a.shape != (n,):
            raise ValueError(f"{what} must have shape ({n},); got {a.shape}.")
        return a

    if len(names) != n:
        raise ValueError(f"{len(names)} names but {n} labels.")
    return (
        sources,
        labels,
        names,
        opt(distances, "distances", np.float64),
        opt(least_typical, "least_typical", bool),
        opt(duplicate_groups, "duplicate_groups", np.int64),
    )


def render_report(
    images,
    labels,
    *,
    names=None,
    distances=None,
    least_typical=None,
    duplicate_groups=None,
    title="skjule clusters",
    description=None,
    max_per_cluster=200,
    thumbnail_size=128,
):
    """The HTML report as a string; see :func:`write_report` for the parameters."""
    from ._version import __version__

    sources, labels, names, dist, lt, dup = _check_report_inputs(
        images, labels, names, distances, least_typical, duplicate_groups
    )
    size = int(thumbnail_size)
    if size < 8:
        raise ValueError(f"thumbnail_size must be at least 8; got {thumbnail_size!r}.")
    max_per_cluster = int(max_per_cluster)
    if max_per_cluster < 1:
        raise ValueError(f"max_per_cluster must be at least 1; got {max_per_cluster!r}.")
    n = len(labels)
    lt = np.zeros(n, bool) if lt is None else lt
    thumbs = {}

    def figure(i, extra=""):
        if i not in thumbs:
            try:
                thumbs[i] = _thumbnail(sources[i], size)
            except Exception as exc:  # noqa: BLE001 - one unreadable image: say so, go on
                thumbs[i] = f"{type(exc).__name__}: {exc}"
        t = thumbs[i]
        name = _esc(names[i])
        badges = ""
        if lt[i]:
            badges += '<span class="badge lt">least typical</span>'
        if dup is not None and dup[i] >= 0:
            badges += f'<a class="badge dup" href="#dup-{int(dup[i])}">duplicate {int(dup[i])}</a>'
        if isinstance(t, str):
            body = f'<div class="missing">cannot show: {_esc(t)}</div>'
        else:
            w, h, uri = t
            scale = max(1, min(size // max(w, h), 8))  # tiny images: enlarged on screen
            body = (
                f'<img src="{uri}" width="{w * scale}" height="{h * scale}" '
                f'alt="{name}" title="{name}">'
            )
        cls = "thumb lt" if lt[i] else "thumb"
        return (
            f'<figure class="{cls}" data-index="{i}"{extra}><div class="frame">{body}'
            f"</div><figcaption>{name}{badges}</figcaption></figure>"
        )

    def in_order(idx):
        """Most typical first (then by sample order)."""
        if dist is None:
            return idx
        d = np.where(np.isnan(dist[idx]), np.inf, dist[idx])
        return idx[np.lexsort((idx, d))]

    clusters = [int(k) for k in np.unique(labels) if k >= 0]
    noise = np.flatnonzero(labels < 0)
    members = {k: np.flatnonzero(labels == k) for k in clusters}
    groups = {}
    if dup is not None:
        for g in np.unique(dup[dup >= 0]):
            groups[int(g)] = np.flatnonzero(dup == g)
    width = max(2, len(str(max(clusters)))) if clusters else 2

    def cname(k):
        return f"cluster_{k:0{width}d}"

    out = []
    w = out.append
    w('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">\n')
    w(f'<meta name="generator" content="skjule {_esc(__version__)}">\n')
    w(f"<title>{_esc(title)}</title>\n<style>{_CSS.replace('SIZE', str(size))}</style>\n")
    w("</head>\n<body>\n<header>\n")
    w(f"<h1>{_esc(title)}</h1>\n")
    parts = [f"{n} photos", f"{len(clusters)} clusters"]
    if len(noise):
        parts.append(f"{len(noise)} noise (fit no cluster)")
    parts.append(f"{int(lt.sum())} least typical")
    if dup is not None:
        parts.append(
            f"{len(groups)} near-duplicate groups ({sum(len(v) for v in groups.values())} photos)"
        )
    w(f'<p class="summary">{_esc(", ".join(parts))}.</p>\n')
    if description:
        w(f'<p class="summary">{_esc(description)}</p>\n')
    w("<nav><ul>\n")
    for k in clusters:
        w(
            f'<li><a href="#{cname(k)}">Cluster {k}</a> '
            f'<span class="count">({len(members[k])})</span></li>\n'
        )
    w('<li><a href="#least-typical">Least typical</a></li>\n')
    if len(noise):
        w(f'<li><a href="#noise">Noise</a> <span class="count">({len(noise)})</span></li>\n')
    if dup is not None:
        w('<li><a href="#duplicates">Near-duplicates</a></li>\n')
    w("</ul></nav>\n</header>\n<main>\n")

    for k in clusters:
        idx = in_order(members[k])
        shown = idx[:max_per_cluster]
        w(f'<section class="cluster" id="{cname(k)}" data-cluster="{k}" data-size="{len(idx)}">\n')
        w(
            f'<h2>Cluster {k} <span class="count">{len(idx)} photo'
            f"{'s' if len(idx) != 1 else ''}</span></h2>\n"
        )
        note = []
        if dist is not None:
            note.append("Most typical first (nearest to the cluster's centre).")
        n_lt = int(lt[idx].sum())
        if n_lt:
            note.append(f"{n_lt} marked least typical (farthest from the centre).")
        if len(shown) < len(idx):
            note.append(f"Showing {len(shown)} of {len(idx)}.")
        if note:
            w(f'<p class="note">{_esc(" ".join(note))}</p>\n')
        w('<div class="grid">\n' + "\n".join(figure(int(i)) for i in shown) + "\n</div>\n")
        w("</section>\n")

    w('<section class="least-typical" id="least-typical">\n<h2>Least typical photos</h2>\n')
    if lt.any():
        w(
            '<p class="note">In each cluster, the photos farthest from its centre in the '
            "feature space of the clustering: check whether they belong there. Least "
            "typical first.</p>\n"
        )
        for k in clusters:
            idx = members[k][lt[members[k]]]
            if not len(idx):
                continue
            idx = in_order(idx)[::-1]
            w(
                f'<h3><a href="#{cname(k)}">Cluster {k}</a> <span class="count">'
                f"{len(idx)} of {len(members[k])}</span></h3>\n"
            )
            w('<div class="grid">\n' + "\n".join(figure(int(i)) for i in idx) + "\n</div>\n")
    else:
        w('<p class="note">None marked.</p>\n')
    w("</section>\n")

    if len(noise):
        shown = noise[:max_per_cluster]
        w(
            f'<section class="cluster noise" id="noise" data-cluster="-1" '
            f'data-size="{len(noise)}">\n<h2>Noise <span class="count">{len(noise)} '
            f"photo{'s' if len(noise) != 1 else ''} that fit no cluster (label -1)"
            "</span></h2>\n"
        )
        if len(shown) < len(noise):
            w(f'<p class="note">Showing {len(shown)} of {len(noise)}.</p>\n')
        w('<div class="grid">\n' + "\n".join(figure(int(i)) for i in shown) + "\n</div>\n")
        w("</section>\n")

    if dup is not None:
        w(
            '<section class="duplicates" id="duplicates">\n<h2>Near-duplicates '
            f'<span class="count">{len(groups)} groups</span></h2>\n'
        )
        if groups:
            w(
                '<p class="note">Photos that look nearly the same (bursts of one shot, '
                "copies, re-encoded or slightly edited versions).</p>\n"
            )
            for g, idx in groups.items():
                shown = idx[:max_per_cluster]
                where = sorted(
                    {("noise" if labels[i] < 0 else f"cluster {labels[i]}") for i in idx}
                )
                w(
                    f'<div class="dup-group" id="dup-{g}"><h3>Group {g} <span class="count">'
                    f"{len(idx)} photos; {_esc(', '.join(where))}</span></h3>\n"
                )
                w(
                    '<div class="grid">\n'
                    + "\n".join(figure(int(i)) for i in shown)
                    + "\n</div></div>\n"
                )
        else:
            w('<p class="note">None found.</p>\n')
        w("</section>\n")
    w(
        f'</main>\n<footer><p class="note">Written by skjule {_esc(__version__)}.</p>'
        "</footer>\n</body>\n</html>\n"
    )
    return "".join(out)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write_text(path, text):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_report(
    path,
    images,
    labels,
    *,
    names=None,
    distances=None,
    least_typical=None,
    duplicate_groups=None,
    title="skjule clusters",
    description=None,
    max_per_cluster=200,
    thumbnail_size=128,
    overwrite=False,
):
    """Write a self-contained HTML page showing the clusters.

    One file, no external resource and no JavaScript: thumbnails are embedded
    as base64 JPEG data URIs. Per cluster: its size and a grid of thumbnails,
    most typical first (when ``distances`` are given), the least typical
    framed in red; then a section of the least typical photos of every
    cluster, the noise (label ``-1``) and the near-duplicate groups.

    Parameters
    ----------
    path : str or path-like
        The HTML file to write. It is written to a temporary file in the same
        folder and renamed into place, so a reader never sees half a page.
    images : array of shape (n, H, W[, C]) or sequence of n image file paths
        What to show. Files are read again (EXIF orientation applied; JPEGs
        decoded at reduced size), so the thumbnails show the original photos
        in colour; an unreadable file is shown as a note.
    labels : array-like of int, shape (n,)
        Cluster labels; ``-1`` is noise.
    names : sequence of str, default=None
        Shown under each thumbnail (default: the paths, or the row numbers).
    distances : array-like of float, shape (n,), default=None
        Distance of each sample to its cluster's centre (see
        :func:`skjule.least_typical`); orders each cluster, most typical first.
    least_typical : array-like of bool, shape (n,), default=None
        The samples to mark as least typical.
    duplicate_groups : array-like of int, shape (n,), default=None
        Near-duplicate group of each sample, ``-1`` for none (see
        :func:`skjule.find_near_duplicates`); adds the section.
    title, description : str
        Page title and an optional line under it.
    max_per_cluster : int, default=200
        Thumbnails shown per cluster (the most typical; the least typical are
        also shown in their own section), for the noise and per duplicate group.
    thumbnail_size : int, default=128
        Longer side of the thumbnails, in pixels.
    overwrite : bool, default=False
        Replace an existing file (otherwise ``FileExistsError``).

    Returns
    -------
    path : pathlib.Path
        The page written.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name.")
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")
    text = render_report(
        images,
        labels,
        names=names,
        distances=distances,
        least_typical=least_typical,
        duplicate_groups=duplicate_groups,
        title=title,
        description=description,
        max_per_cluster=max_per_cluster,
        thumbnail_size=thumbnail_size,
    )
    _atomic_write_text(path, text)
    return path


# ==================================================================== export


class ExportError(ValueError):
    """The export cannot be written as asked (a refused folder, a missing photo)."""


def _norm_rel(rel):
    """A manifest path, if it is a plain relative path inside the folder; else None."""
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or "\x00" in rel:
        return None
    parts = Path(rel).parts
    if any(p in ("", ".", "..") for p in parts):
        return None
    return os.path.join(*parts)


def _inside_real(folder_real, rel):
    """Whether every parent of ``rel`` below ``folder_real`` is a real folder (no link
    that would lead elsewhere)."""
    parent = os.path.dirname(rel)
    if not parent:
        return True
    return os.path.realpath(os.path.join(folder_real, parent)) == os.path.join(folder_real, parent)


def _read_manifest(folder):
    """The (files, folders) an earlier export recorded, or None if there is no
    manifest of skjule's (missing, a link, unreadable, another format)."""
    path = os.path.join(folder, MANIFEST)
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("skjule_export") != _MANIFEST_FORMAT:
        return None
    files = [e for e in data.get("files", []) if isinstance(e, dict)]
    folders = [d for d in data.get("folders", []) if isinstance(d, str)]
    return files, folders


def _ours(folder_real, entry):
    """The relative path of a recorded entry if it is still what skjule wrote."""
    rel = _norm_rel(entry.get("path"))
    if rel is None or not _inside_real(folder_real, rel):
        return None
    p = os.path.join(folder_real, rel)
    try:
        st = os.lstat(p)
    except OSError:
        return None
    if "link" in entry:
        if not stat.S_ISLNK(st.st_mode):
            return None
        try:
            return rel if os.readlink(p) == entry["link"] else None
        except OSError:
            return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if st.st_size == entry.get("size") and st.st_mtime_ns == entry.get("mtime_ns"):
        return rel
    return None


def removable_entries(folder):
    """What an earlier export into ``folder`` wrote and is unchanged:
    (relative files, relative folders). Everything else is the user's."""
    folder_real = os.path.realpath(folder)
    manifest = _read_manifest(folder_real)
    if manifest is None:
        return [], []
    files, folders = manifest
    ours = [r for r in (_ours(folder_real, e) for e in files) if r is not None]
    dirs = [
        r for r in (_norm_rel(d) for d in folders) if r is not None and _inside_real(folder_real, r)
    ]
    return ours + [MANIFEST], dirs


class _Namer:
    """Unique names per folder: a file's own name, or ``name (2).ext`` etc. on a
    collision (compared case-insensitively, as on macOS and Windows).

    For an existing target folder (``root``), the names of the entries that
    stay (everything but ``removable``) are taken; a real folder that stays is
    reused (the new files are added to it), anything else of that name is
    avoided.
    """

    def __init__(self, root=None, removable=()):
        self.root = root
        self.removable = set(removable)
        self.used = {}  # relative folder -> casefolded names taken in it
        self.real_dirs = set()  # relative paths of real folders in root that stay
        self.resolved = {}  # (parent, name) -> relative path of the folder

    def _used(self, rel_dir):
        if rel_dir not in self.used:
            names = set()
            if self.root is not None and (rel_dir == "" or rel_dir in self.real_dirs):
                with contextlib.suppress(OSError):
                    for e in os.scandir(os.path.join(self.root, rel_dir)):
                        rel = os.path.join(rel_dir, e.name) if rel_dir else e.name
                        if rel in self.removable:
                            continue
                        names.add(e.name.casefold())
                        with contextlib.suppress(OSError):
                            if e.is_dir(follow_symlinks=False):
                                self.real_dirs.add(rel)
            self.used[rel_dir] = names
        return self.used[rel_dir]

    def folder(self, parent, name):
        key = (parent, name)
        if key not in self.resolved:
            used = self._used(parent)
            rel = os.path.join(parent, name) if parent else name
            if name.casefold() in used and rel not in self.real_dirs:
                name = self._unique(used, name)
                rel = os.path.join(parent, name) if parent else name
            used.add(name.casefold())
            self.resolved[key] = rel
        return self.resolved[key]

    def file(self, parent, name):
        used = self._used(parent)
        name = self._unique(used, name) if name.casefold() in used else name
        used.add(name.casefold())
        return os.path.join(parent, name) if parent else name

    @staticmethod
    def _unique(used, name):
        stem, ext = os.path.splitext(name)
        i = 2
        while f"{stem} ({i}){ext}".casefold() in used:
            i += 1
        return f"{stem} ({i}){ext}"


def _cluster_dir(k, width):
    return NOISE_DIR if k < 0 else f"cluster_{k:0{width}d}"


def check_export_sources(paths):
    """The absolute path of each source photo; every one must be a regular file."""
    out = []
    for p in paths:
        a = os.path.abspath(os.fspath(p))
        try:
            st = os.stat(a)
        except OSError as exc:
            raise ExportError(f"cannot export {p}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ExportError(f"cannot export {p}: not a regular file")
        out.append(a)
    return out


def build_export(
    build_dir,
    target_real,
    sources,
    labels,
    *,
    names=None,
    least_typical=None,
    distances=None,
    duplicate_groups=None,
    copy=False,
    existing=False,
):
    """Write the export tree into ``build_dir`` (a fresh, empty folder).

    ``target_real`` is where it will be moved (an existing folder when
    ``existing``: the names of what stays there are avoided). The links or
    copies are named after the source files. Returns the path of each
    sample's link or copy relative to the target, and what
    :func:`commit_export` removes of an earlier export: (files, folders).
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    names = [os.path.basename(s) for s in sources] if names is None else list(names)
    lt = np.zeros(n, bool) if least_typical is None else np.asarray(least_typical, bool)
    removable, rm_dirs = removable_entries(target_real) if existing else ([], [])
    namer = _Namer(target_real if existing else None, removable)
    kept = labels[labels >= 0]
    width = max(2, len(str(int(kept.max())))) if kept.size else 2
    rel_paths = []
    files, folders = [], []
    made = set()

    def mkdir(rel):
        if rel not in made:
            os.makedirs(os.path.join(build_dir, rel), exist_ok=True)
            made.add(rel)
            folders.append(rel)

    for i in range(n):
        k = int(labels[i])
        top = namer.folder("", _cluster_dir(k, width))
        parent = namer.folder(top, LEAST_TYPICAL_DIR) if (lt[i] and k >= 0) else top
        mkdir(top)
        mkdir(parent)
        base = os.path.basename(sources[i]) or f"{i}"
        rel = namer.file(parent, base)
        dst = os.path.join(build_dir, rel)
        if copy:
            shutil.copy2(sources[i], dst)
            st = os.lstat(dst)
            files.append({"path": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
        else:
            try:
                os.symlink(sources[i], dst)
            except (OSError, NotImplementedError) as exc:
                raise ExportError(
                    f"cannot create a symbolic link in {target_real} "
                    f"({getattr(exc, 'strerror', None) or exc}); use copies instead "
                    "(--copy, copy=True)"
                ) from None
            files.append({"path": rel, "link": sources[i]})
        rel_paths.append(rel)

    index = namer.file("", INDEX)
    with open(
        os.path.join(build_dir, index), "w", newline="", encoding="utf-8", errors="surrogateescape"
    ) as f:
        w = csv.writer(f)
        w.writerow(
            [
                "file",
                "cluster",
                "distance_to_centroid",
                "least_typical",
                "duplicate_group",
                "exported_as",
            ]
        )
        for i in range(n):
            d = (
                ""
                if distances is None or not np.isfinite(distances[i])
                else f"{float(distances[i]):.6g}"
            )
            g = -1 if duplicate_groups is None else int(duplicate_groups[i])
            w.writerow(
                [names[i], int(labels[i]), d, int(lt[i]), g, rel_paths[i].replace(os.sep, "/")]
            )
    st = os.lstat(os.path.join(build_dir, index))
    files.append({"path": index, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    manifest = {
        "skjule_export": _MANIFEST_FORMAT,
        "copy": bool(copy),
        "files": files,
        "folders": folders,
    }
    with open(
        os.path.join(build_dir, MANIFEST), "w", encoding="utf-8", errors="surrogateescape"
    ) as f:
        json.dump(manifest, f, indent=1, ensure_ascii=True)
    os.chmod(os.path.join(build_dir, MANIFEST), 0o666 & ~_umask())
    return rel_paths, (removable, rm_dirs)


def new_build_dir(target_real, existing):
    """A fresh folder to build the export in, on the target's file system: inside
    the target when it exists, beside it otherwise (then renamed to it)."""
    if existing:
        d = tempfile.mkdtemp(dir=target_real, prefix=".skjule-export.", suffix=_TMP_SUFFIX)
    else:
        d = tempfile.mkdtemp(
            dir=os.path.dirname(target_real),
            prefix=f".{os.path.basename(target_real)}.",
            suffix=_TMP_SUFFIX,
        )
    os.chmod(d, 0o777 & ~_umask())
    return d


def commit_export(build_dir, target_real, existing, removable):
    """Move the built tree into place.

    A new target: one rename of the whole folder (atomic). An existing one:
    the entries an earlier export wrote and that are unchanged are removed
    (then the folders it made, if empty), and the new entries are moved in
    (each folder or file by one rename; names were chosen not to collide).
    """
    if not existing:
        os.rename(build_dir, target_real)
        return
    files, dirs = removable
    for rel in files:
        if rel == MANIFEST:
            continue  # replaced at the end
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(target_real, rel))
    for rel in sorted(dirs, key=lambda r: -len(Path(r).parts)):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(target_real, rel))

    def move_in(src_dir, dst_dir):
        for e in sorted(os.listdir(src_dir)):
            if src_dir == build_dir and e == MANIFEST:
                continue
            src, dst = os.path.join(src_dir, e), os.path.join(dst_dir, e)
            if (
                os.path.isdir(dst)
                and not os.path.islink(dst)
                and os.path.isdir(src)
                and not os.path.islink(src)
            ):
                move_in(src, dst)  # a folder kept (the user's files in it): merge
                os.rmdir(src)
            elif os.path.lexists(dst):
                raise FileExistsError(
                    f"{dst} appeared during the export; nothing of yours was replaced"
                )
            else:
                os.rename(src, dst)

    move_in(build_dir, target_real)
    os.replace(os.path.join(build_dir, MANIFEST), os.path.join(target_real, MANIFEST))
    os.rmdir(build_dir)


def export_clusters(
    paths,
    labels,
    out_dir,
    *,
    least_typical=None,
    copy=False,
    names=None,
    distances=None,
    duplicate_groups=None,
    overwrite=False,
):
    """Sort photos into one folder per cluster (symbolic links or copies).

    Layout of ``out_dir``::

        cluster_00/IMG_0001.jpg      -> /photos/2023/IMG_0001.jpg (a link; or a copy)
        cluster_00/IMG_0001 (2).jpg  (another file of that name in the same cluster)
        cluster_00/_least_typical/IMG_0107.jpg   (marked least typical)
        noise/IMG_0200.jpg           (label -1: fits no cluster)
        index.csv                    file, cluster, distance_to_centroid, least_typical,
                                     duplicate_group, exported_as
        .skjule-export.json          what skjule wrote (used by a later overwrite)

    Photos keep their own file names; a collision in one folder (compared
    case-insensitively) adds `` (2)``, `` (3)``, ... before the extension.
    Cluster folders are numbered with at least two digits.

    Parameters
    ----------
    paths : sequence of n paths
        The photos (regular files). Links are absolute.
    labels : array-like of int, shape (n,)
        Cluster labels; ``-1`` goes to ``noise/``.
    out_dir : str or path-like
        The folder to write. It must not hold any of the photos and must not
        be inside one of their folders (where it would be read back as
        photos). A new folder is built under a temporary name beside it and
        renamed into place in one step.
    least_typical : array-like of bool, shape (n,), default=None
        Samples placed in their cluster's ``_least_typical/`` sub-folder.
    copy : bool, default=False
        Copy the files (``shutil.copy2``) instead of linking them.
    names : sequence of str, default=None
        The ``file`` column of ``index.csv`` (default: the paths); their base
        names name the links.
    distances, duplicate_groups : array-like, shape (n,), default=None
        Extra columns of ``index.csv`` (see :func:`skjule.least_typical` and
        :func:`skjule.find_near_duplicates`).
    overwrite : bool, default=False
        Allow a non-empty ``out_dir``. Only what an earlier export wrote there
        (listed in its ``.skjule-export.json``) and is unchanged - a link
        still pointing where skjule made it point, a copy of the same size and
        modification time - is removed; every other file is kept, and new
        names avoid them.

    Returns
    -------
    exported : list of pathlib.Path
        Where each photo's link or copy is, aligned with ``paths``.
    """
    paths = list(paths)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(paths):
        raise ValueError(
            f"labels must be {len(paths)} integers, one per path; got dtype "
            f"{labels.dtype}, shape {labels.shape}."
        )
    for what, a in (
        ("least_typical", least_typical),
        ("distances", distances),
        ("duplicate_groups", duplicate_groups),
        ("names", names),
    ):
        if a is not None and len(a) != len(paths):
            raise ValueError(f"{what} must have {len(paths)} entries; got {len(a)}.")
    sources = check_export_sources(paths)
    target_real = os.path.realpath(out_dir)
    for s in sources:
        rs = os.path.realpath(s)
        if rs.startswith(target_real + os.sep) or rs == target_real:
            raise ExportError(f"{out_dir} holds the photo {s}; choose another folder.")
        d = os.path.dirname(s)
        if target_real == os.path.realpath(d) or target_real.startswith(
            os.path.realpath(d) + os.sep
        ):
            raise ExportError(
                f"{out_dir} is in the folder of the photo {s}, where it "
                "would be read as photos; choose a folder outside it."
            )
    existing = os.path.lexists(target_real)
    if existing:
        if not os.path.isdir(target_real):
            raise ExportError(f"{out_dir} exists and is not a folder.")
        if os.listdir(target_real) and not overwrite:
            raise FileExistsError(
                f"{out_dir} is not empty; pass overwrite=True to replace "
                "what an earlier export wrote (other files are kept)."
            )
    else:
        os.makedirs(os.path.dirname(target_real), exist_ok=True)
    build = new_build_dir(target_real, existing)
    try:
        names_ = [str(p) for p in paths] if names is None else [str(x) for x in names]
        rel, removable = build_export(
            build,
            target_real,
            sources,
            labels,
            names=names_,
            least_typical=least_typical,
            distances=distances,
            duplicate_groups=duplicate_groups,
            copy=copy,
            existing=existing,
        )
        commit_export(build, target_real, existing, removable)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(build)
        raise
    return [Path(out_dir) / r for r in rel]
