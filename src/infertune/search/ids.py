"""Content-derived candidate ids: the same recipe on the same runtime of the same model gets
the same id in every run, so a resumed run recognises what its journal already holds
(Olive's content-addressed idea, `engine.py`)."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

ID_LENGTH = 12


def canonical(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal data, equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def candidate_id(model_key: Mapping[str, Any], recipe: Sequence[Mapping[str, Any]],
                 runtime: str, runtime_options: Mapping[str, Any] | None = None) -> str:
    """12 hex digits of sha256 over (model, recipe steps with their full options, runtime,
    and the runtime configuration where there is one: without it, the id is what it was
    before configurations existed, so older journals still resume)."""
    key: dict[str, Any] = {"model": dict(model_key), "recipe": [dict(s) for s in recipe],
                           "runtime": runtime}
    if runtime_options:
        key["runtime_options"] = dict(runtime_options)
    return hashlib.sha256(canonical(key).encode()).hexdigest()[:ID_LENGTH]
