"""Config validation shared by the precision passes' Config dataclasses."""
from __future__ import annotations

import typing
from typing import Any, Literal


def check_literals(config: Any) -> None:
    """Raises ValueError naming the field and its allowed values for a bad Literal field
    (the CLI's coercion checks them too; this catches configs built in Python)."""
    for name, tp in typing.get_type_hints(type(config)).items():
        if typing.get_origin(tp) is Literal:
            allowed = typing.get_args(tp)
            if getattr(config, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, "
                                 f"not {getattr(config, name)!r}")
