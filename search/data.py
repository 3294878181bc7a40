"""Image datasets for supernets and stand-alone training, read from local files only.

Sources (nothing is downloaded at run time):
- ``fashion-mnist``: idx files from Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist``; override with ``fashion-mnist:PATH`` or
  ``$HWNAS_FMNIST_DIR``);
- ``cifar10:PATH``: the python-pickle folder (``data_batch_1..5``, ``test_batch``), read by a
  restricted unpickler that builds only containers, bytes and plain numpy arrays (a batch file
  is data from elsewhere: nothing in it may run code);
- ``folder:PATH``: a torchvision ImageFolder-style tree (``PATH/train/<class>/*.png`` and
  ``PATH/test/<class>/...``, or class folders directly under PATH), read with PIL;
- ``digits``: scikit-learn's bundled 8x8 digits, for fast tests.

Splits are fixed by seed: validation is carved out of the official training set, the test split
is the official test set (or a seeded hold-out when there is none). Supernet training and subnet
evaluation only ever receive ``train`` and ``val``; ``test`` is for final reporting.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FMNIST_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class DataError(OSError):
    """A dataset that is missing or unreadable; the message says how to provide it."""


@dataclass
class Split:
    """Images as float32 [N, C, H, W] (normalised) and int64 labels [N]."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int | None, seed: int = 0) -> Split:
        """A fixed random subset of n items (all when n is None or >= len)."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self))[:n])
        return Split(self.x[idx], self.y[idx])


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    spec: str
    seed: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])

    def describe(self) -> dict:
        return {"data": self.spec, "split_seed": self.seed, "train": len(self.train),
                "val": len(self.val), "test": len(self.test), "input_shape": list(self.input_shape),
                "num_classes": self.num_classes}


# ---- readers ---------------------------------------------------------------------------
def _read_idx(path: Path) -> np.ndarray:
    """The idx format of (Fashion-)MNIST: magic, dims as big-endian int32, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read idx file ({exc}); reinstall dataset-fashion-mnist") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not a uint8 idx file; reinstall dataset-fashion-mnist")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated ({data.size} of {int(np.prod(dims))} values); reinstall it")
    return data.reshape(dims)


def read_fashion_mnist(root: str | os.PathLike | None = None):
    root = Path(root or os.environ.get("HWNAS_FMNIST_DIR") or FMNIST_DIR)
    missing = [f for f in FMNIST_FILES.values() if not (root / f).exists()
               and not (root / f.removesuffix(".gz")).exists()]
    if missing:
        raise DataError(
            f"Fashion-MNIST not found in {root} (missing {missing[0]}): run "
            "`sudo apt-get install dataset-fashion-mnist` (or `make setup`), or pass "
            "--data fashion-mnist:/path/to/idx/folder"
        )

    def get(key):
        p = root / FMNIST_FILES[key]
        return _read_idx(p if p.exists() else p.with_suffix(""))

    tx, ty, sx, sy = (get(k) for k in ("train_x", "train_y", "test_x", "test_y"))
    return tx[:, None], ty.astype(np.int64), sx[:, None], sy.astype(np.int64), 10


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A batch file names a callable outside what the CIFAR-10 format needs."""


def _latin1_encode(text, encoding="latin1"):
    """`_codecs.encode` as Python 3's protocol-2 pickles use it for bytes, latin-1 only."""
    if not isinstance(text, str) or encoding.replace("-", "").replace("_", "").lower() != "latin1":
        raise _ForbiddenGlobal(f"_codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, str and numbers (no global needed) plus numpy arrays,
    numpy scalars and dtypes, the only classes a CIFAR-10 batch holds; any other global (os.system, builtins.eval,
    a user class's __reduce__, ...) is refused before it is looked up, let alone called."""

    def find_class(self, module, name):
        try:
            from numpy._core.multiarray import _reconstruct, scalar
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import _reconstruct, scalar

        allowed = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
                   ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
                   ("numpy.core.multiarray", "scalar"): scalar,  # a numpy number (labels saved by numpy)
                   ("numpy._core.multiarray", "scalar"): scalar,
                   ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                   ("_codecs", "encode"): _latin1_encode}
        try:
            return allowed[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"{module}.{name}") from None


def read_cifar10(root: str | os.PathLike):
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise DataError(
            f"CIFAR-10 python batches not found in {root} (missing {missing[0]}); pass the folder "
            "that holds data_batch_1..5 and test_batch: --data cifar10:/path/to/cifar-10-batches-py"
        )

    def load(n):
        try:
            with open(root / n, "rb") as f:
                d = _CifarUnpickler(f, encoding="bytes").load()
            data, labels = d[b"data"], d[b"labels"]
            if not isinstance(data, np.ndarray) or data.dtype == object:
                raise TypeError("data is not a numeric array")
            return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)
        except _ForbiddenGlobal as exc:
            raise DataError(f"{root / n}: not a CIFAR-10 python batch (it asks to run {exc}, which a data batch "
                            "never does; nothing was run); re-extract the official cifar-10-python.tar.gz") from None
        except Exception as exc:  # pickle raises many types for a corrupt file
            raise DataError(f"{root / n}: not a CIFAR-10 python batch ({type(exc).__name__}); re-extract it") from None

    parts = [load(n) for n in names[:5]]
    sx, sy = load("test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), sx, sy, 10


def _read_image_tree(root: Path, classes: list[str]):
    from PIL import Image

    xs, ys = [], []
    for ci, c in enumerate(classes):
        d = root / c
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                try:
                    with Image.open(f) as im:
                        xs.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
                except OSError as exc:
                    raise DataError(f"{f}: unreadable image ({exc}); remove or replace it") from None
                ys.append(ci)
    if not xs:
        return np.zeros((0, 3, 1, 1), np.uint8), np.zeros(0, np.int64)
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise DataError(f"{root}: images have different sizes {sorted(shapes)[:3]}; resize them to one size first")
    return np.stack(xs).transpose(0, 3, 1, 2).copy(), np.asarray(ys, dtype=np.int64)


def read_image_folder(root: str | os.PathLike):
    """ImageFolder layout; `train/` + (`test/` | `val/`) subfolders, or class folders directly."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist; pass --data folder:/path/with/class/subfolders")
    train_dir = root / "train" if (root / "train").is_dir() else root
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and p.name not in ("train", "test", "val"))
    if not classes:
        raise DataError(f"{train_dir}: no class subfolders; expected {train_dir}/<class>/<image>.png (ImageFolder layout)")
    tx, ty = _read_image_tree(train_dir, classes)
    if len(ty) == 0:
        raise DataError(f"{train_dir}: no images with suffix {', '.join(IMAGE_SUFFIXES)} in the class folders")
    if test_dir is not None:
        sx, sy = _read_image_tree(test_dir, classes)
    else:
        sx, sy = None, None
    return tx, ty, sx, sy, len(classes)


def read_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.clip(d.images * (255.0 / 16.0), 0, 255).astype(np.uint8)[:, None]
    return x, d.target.astype(np.int64), None, None, 10


# ---- preparation ------------------------------------------------------------------------
def _fit_shape(x: np.ndarray, shape: tuple[int, int, int] | None) -> np.ndarray:
    """uint8 [N,C,H,W] -> float32 in [0,1] with the channels and resolution of `shape`."""
    xf = x.astype(np.float32) / 255.0
    if shape is None:
        return xf
    c, h, w = shape
    if xf.shape[1] != c:
        if xf.shape[1] == 1:
            xf = np.repeat(xf, c, axis=1)
        elif c == 1:
            xf = xf.mean(axis=1, keepdims=True)
        else:
            raise DataError(f"cannot map {xf.shape[1]}-channel images to {c} channels")
    if xf.shape[2:] != (h, w):
        import torch
        import torch.nn.functional as F

        out = []
        for i in range(0, len(xf), 4096):
            t = torch.from_numpy(xf[i:i + 4096])
            out.append(F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False).numpy())
        xf = np.concatenate(out)
    return np.ascontiguousarray(xf, dtype=np.float32)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'fashion-mnist' | 'fashion-mnist:PATH' | 'cifar10:PATH' | 'folder:PATH' | 'digits' | PATH."""
    name, sep, path = spec.partition(":")
    name = name.lower().replace("_", "-")
    aliases = {"fmnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
               "imagefolder": "folder"}
    name = aliases.get(name, name)
    if name in ("fashion-mnist", "cifar10", "folder", "digits"):
        return name, (path or None) if sep else None
    p = Path(spec)
    if p.is_dir():
        if (p / "data_batch_1").exists() or (p / "cifar-10-batches-py").is_dir():
            return "cifar10", spec
        if (p / FMNIST_FILES["train_x"]).exists():
            return "fashion-mnist", spec
        return "folder", spec
    raise DataError(
        f"unknown dataset {spec!r}; use fashion-mnist, digits, cifar10:/path/to/cifar-10-batches-py, "
        "folder:/path/to/imagefolder, or an existing folder"
    )


def load_dataset(spec: str, shape: tuple[int, int, int] | None = None, seed: int = 0,
                 val_fraction: float = 1 / 12, test_fraction: float = 0.2) -> Dataset:
    """Load `spec`, normalise to [0,1] then per-channel standardise with training statistics.

    `shape` (C, H, W) resizes and maps channels so the data fits a space's `input_shape`.
    The val split is `val_fraction` of the official training set, chosen by `seed`.
    """
    name, path = parse_spec(spec)
    if name == "fashion-mnist":
        tx, ty, sx, sy, k = read_fashion_mnist(path)
    elif name == "cifar10":
        if not path:
            raise DataError("cifar10 needs a local folder: --data cifar10:/path/to/cifar-10-batches-py")
        tx, ty, sx, sy, k = read_cifar10(path)
    elif name == "folder":
        if not path:
            raise DataError("folder needs a path: --data folder:/path/with/class/subfolders")
        tx, ty, sx, sy, k = read_image_folder(path)
    else:
        tx, ty, sx, sy, k = read_digits()
    rng = np.random.default_rng(seed)
    if sx is None:  # no official test split: a seeded hold-out
        perm = rng.permutation(len(ty))
        n_test = max(1, int(round(test_fraction * len(ty))))
        sx, sy = tx[perm[:n_test]], ty[perm[:n_test]]
        tx, ty = tx[perm[n_test:]], ty[perm[n_test:]]
    perm = rng.permutation(len(ty))
    n_val = max(1, int(round(val_fraction * len(ty))))
    vi, ti = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    train_x = _fit_shape(tx[ti], shape)
    mean = train_x.mean(axis=(0, 2, 3), keepdims=True)
    std = train_x.std(axis=(0, 2, 3), keepdims=True) + 1e-6

    def norm(x):
        return ((x - mean) / std).astype(np.float32)

    return Dataset(
        name=name, spec=spec, seed=seed, num_classes=k,
        train=Split(norm(train_x), ty[ti]),
        val=Split(norm(_fit_shape(tx[vi], shape)), ty[vi]),
        test=Split(norm(_fit_shape(sx, shape)), sy),
    )


def batches(split: Split, batch_size: int, rng: np.random.Generator | None = None,
            limit: int | None = None, drop_last: bool = False):
    """Yield (x, y) torch tensors; shuffled when `rng` is given, at most `limit` items."""
    import torch

    n = len(split)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    if limit is not None:
        order = order[:limit]
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]
        if rng is None and idx[-1] - idx[0] == len(idx) - 1:
            xb, yb = split.x[idx[0]:idx[-1] + 1], split.y[idx[0]:idx[-1] + 1]
        else:
            xb, yb = split.x[idx], split.y[idx]
        yield torch.from_numpy(np.ascontiguousarray(xb)), torch.from_numpy(np.ascontiguousarray(yb))
