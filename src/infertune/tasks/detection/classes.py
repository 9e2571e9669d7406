"""Which model class each data set class is: by name, with the renamings between Darknet's
`coco.names` (VOC-style spellings) and the COCO annotation files; or by number when the data
set's classes are only numbers (a YOLO folder without names) or the model has no names."""
from __future__ import annotations

from typing import Sequence

from ...errors import ConfigError

# Darknet's coco.names spelling → the COCO categories' spelling.
ALIASES = {"motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch",
           "pottedplant": "potted plant", "diningtable": "dining table", "tvmonitor": "tv"}


def _key(name: str) -> str:
    name = name.strip().lower()
    return ALIASES.get(name, name)


def class_mapping(data_names: Sequence[str], model_names: Sequence[str], where: str) -> list[int]:
    """Model class index of each data set class (list indexed by data set class).

    Raises:
        ConfigError: a data set class the model does not have (named), or more classes than
            the model has when matching by number.
    """
    numbered_model = all(n == str(k) for k, n in enumerate(model_names))
    numbered_data = all(n == str(k) for k, n in enumerate(data_names))
    if numbered_model or numbered_data:
        if len(data_names) > len(model_names):
            raise ConfigError(f"{where}: {len(data_names)} classes, the model has "
                              f"{len(model_names)}")
        return list(range(len(data_names)))
    lookup = {_key(n): k for k, n in enumerate(model_names)}
    missing = [n for n in data_names if _key(n) not in lookup]
    if missing:
        raise ConfigError(f"{where}: classes not known to the model: {', '.join(missing[:5])}"
                          + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
    return [lookup[_key(n)] for n in data_names]
