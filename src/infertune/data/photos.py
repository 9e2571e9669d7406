"""Real photographs that installed packages ship on disk: no download, same set everywhere.

Three packages carry a handful of real photos inside their wheels: scikit-image
(`skimage/data/`), scikit-learn (`sklearn/datasets/images/`) and matplotlib
(`mpl-data/sample_data/`). Only files that are inside the wheels are listed: scikit-image
fetches its other images with pooch from the network, which this tool never does.

The list is fixed (not a directory scan) so that the set, and every number measured on
it, is the same on every machine; its order is the order below. Synthetic images that
the packages also ship (chessboards, phantoms, logos, a horse silhouette, colour wheels)
are left out: they are not photographs. Each licence is quoted as the package documents it
(scikit-image: the docstring of the `skimage.data` function of that name; scikit-learn:
`sklearn/datasets/images/README.txt`); matplotlib documents none for its sample data, so
the one photo taken from it says where its licence comes from.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

_SKIMAGE = "scikit-image"
_SKLEARN = "scikit-learn"
_MATPLOTLIB = "matplotlib"
# distribution name -> (import name, folder of the photos inside the package)
_PACKAGES = {
    _SKIMAGE: ("skimage", "data"),
    _SKLEARN: ("sklearn", "datasets/images"),
    _MATPLOTLIB: ("matplotlib", "mpl-data/sample_data"),
}


@dataclass(frozen=True)
class Photo:
    """One real photograph shipped by an installed package.

    Attributes:
        name: "<package short name>/<photo>", e.g. "skimage/chelsea".
        package: the distribution that ships it ("scikit-image").
        path: the file it is read from.
        licence: the licence as the package documents it, and where that is written.
    """

    name: str
    package: str
    path: str
    licence: str

    def pixels(self) -> np.ndarray:
        """The photo as uint8 H×W×3 RGB; grey photos are repeated to three channels.

        Raises:
            DataError: the file cannot be decoded (named).
        """
        from .sources import decode_image

        return np.ascontiguousarray(decode_image(Path(self.path), 3).transpose(1, 2, 0))


@dataclass(frozen=True)
class _Known:
    name: str
    package: str
    file: str
    licence: str


_SK_DOC = "as documented in skimage.data.{}"
# The fixed list, in the order real_photos() returns it.
_KNOWN: tuple[_Known, ...] = (
    _Known("skimage/chelsea", _SKIMAGE, "chelsea.png",
           "CC0 by the photographer (Stefan van der Walt); " + _SK_DOC.format("chelsea")),
    _Known("skimage/coffee", _SKIMAGE, "coffee.png",
           "CC0 by the photographer (Rachel Michetti); " + _SK_DOC.format("coffee")),
    _Known("skimage/rocket", _SKIMAGE, "rocket.jpg",
           "public domain (SpaceX); " + _SK_DOC.format("rocket")),
    _Known("skimage/astronaut", _SKIMAGE, "astronaut.png",
           "public domain, no known copyright restrictions (NASA); "
           + _SK_DOC.format("astronaut")),
    _Known("skimage/camera", _SKIMAGE, "camera.png",
           "CC0 by the photographer (Lav Varshney); " + _SK_DOC.format("camera")),
    _Known("skimage/coins", _SKIMAGE, "coins.png",
           "no known copyright restrictions (Brooklyn Museum); " + _SK_DOC.format("coins")),
    _Known("skimage/hubble_deep_field", _SKIMAGE, "hubble_deep_field.jpg",
           "public domain (NASA); " + _SK_DOC.format("hubble_deep_field")),
    _Known("skimage/immunohistochemistry", _SKIMAGE, "ihc.png",
           "no known copyright restrictions (CMMI); " + _SK_DOC.format("immunohistochemistry")),
    _Known("skimage/retina", _SKIMAGE, "retina.jpg",
           "CC0 1.0 (Wikimedia Commons); " + _SK_DOC.format("retina")),
    _Known("skimage/brick", _SKIMAGE, "brick.png",
           "CC0 (CC0Textures); " + _SK_DOC.format("brick")),
    _Known("skimage/grass", _SKIMAGE, "grass.png",
           "CC0 (DeviantArt, linolafett); " + _SK_DOC.format("grass")),
    _Known("skimage/gravel", _SKIMAGE, "gravel.png",
           "CC0 (CC0Textures); " + _SK_DOC.format("gravel")),
    _Known("sklearn/china", _SKLEARN, "china.jpg",
           "CC BY 2.0, danielbuechele on Flickr; as documented in "
           "sklearn/datasets/images/README.txt"),
    _Known("sklearn/flower", _SKLEARN, "flower.jpg",
           "CC BY 2.0, vultilion on Flickr; as documented in "
           "sklearn/datasets/images/README.txt"),
    _Known("matplotlib/grace_hopper", _MATPLOTLIB, "grace_hopper.jpg",
           "public domain (official U.S. Navy photograph of Grace Hopper); matplotlib's "
           "sample_data/README.txt states no licence"),
)


def package_folder(package: str) -> Path:
    """Where `package` keeps its photos, found without importing it.

    Raises:
        DataError: the package is not installed (says what to install).
    """
    module, sub = _PACKAGES[package]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the real-photo set needs {package}: pip install {package} "
                        "(or infertune[photos])")
    return Path(list(spec.submodule_search_locations)[0]) / sub


def real_photos() -> list[Photo]:
    """The real photos present on disk, in a fixed order (see `_KNOWN`).

    All three packages must be installed, so that the set does not silently shrink; a
    photo that an installed version no longer ships is left out (the descriptions of
    data sets built from it name the files used).

    Raises:
        DataError: one of the packages is not installed (one line naming it).
    """
    folders = {package: package_folder(package) for package in _PACKAGES}
    photos = []
    for known in _KNOWN:
        path = folders[known.package] / known.file
        if path.is_file():
            photos.append(Photo(known.name, known.package, str(path), known.licence))
    if not photos:
        raise DataError("none of the real photos is present in the installed scikit-image, "
                        "scikit-learn and matplotlib")
    return photos
