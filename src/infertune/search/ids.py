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
                 runtime: str) -> str:
    """12 hex digits of sha256 over (model, recipe steps with their full options, runtime)."""
    text = canonical({"model": dict(model_key), "recipe": [dict(s) for s in recipe],
                      "runtime": runtime})
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]
