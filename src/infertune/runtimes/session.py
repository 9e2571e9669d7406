"""The seam between the harness and the runtimes: a JSON-describable recipe for a session
(`SessionFactory`) and the child-side lookup of its opener (`get_opener`).

A runtime plugs in by registering an *opener* under its name in `OPENERS` (runtimes/base.py;
a runtime module uses the `opener` decorator there):

    from infertune.runtimes.base import OPENERS

    @OPENERS.register("openvino")
    def open_openvino(artifact: str, options: Mapping[str, Any]) -> Session:
        ...

    open_openvino.preload = ("openvino",)   # optional: imported in the child's import phase

in the module that defines its `Runtime` class (registered in `infertune.runtimes.RUNTIMES`):
`Runtime.opener_module` names that module, and `SessionFactory.to_dict()` writes it into the
job (a job may also name another module in `SessionFactory.module`). The harness measures
in a *fresh* child interpreter, so a registration made in the parent process is invisible
there: the child re-imports the module named for the runtime, and only then looks the
opener up.

It lives with the runtimes, below the harness (`measure/`), because a runtime needs it too
(layer timing opens artifacts through it) and it reads the runtimes' registry to find the
module that registers an opener. It imports no ML framework (not even numpy): the parent
loads it and must stay lean.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ConfigError
from .base import OPENERS, RUNTIMES, Opener, Session

TESTING_MODULE = "infertune.measure.testing_runtimes"


@dataclass(frozen=True)
class SessionFactory:
    """A JSON-describable recipe for a Session: what the child process opens.

    Attributes:
        runtime: the opener's name in OPENERS ("onnxruntime", "sleep", ...).
        artifact: path of the file or folder to open ("" for fakes that need none).
        options: opener options (JSON-ready); "threads" is filled in by the harness.
        module: the module whose import registers the opener; defaults to the registered
            runtime's `opener_module`.
        label: the name shown in results; two factories of one runtime (FP32 vs INT8)
            need different labels. Defaults to `runtime`.
    """

    runtime: str
    artifact: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    module: str | None = None
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.runtime

    def resolved_module(self) -> str:
        """The module to import in the child; raises ConfigError for an unknown runtime."""
        if self.module:
            return self.module
        module = registered_opener_module(self.runtime)
        if module:
            return module
        if self.runtime in OPENERS:  # registered in-process by a module we cannot name
            raise ConfigError(f"runtime {self.runtime!r} is registered in this process only; "
                              "pass module= so the measuring child can import it")
        raise ConfigError(unknown_runtime_message(self.runtime))

    def to_dict(self) -> dict[str, Any]:
        return {"runtime": self.runtime, "artifact": str(self.artifact),
                "options": dict(self.options), "module": self.resolved_module(),
                "label": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SessionFactory":
        return cls(runtime=data["runtime"], artifact=data.get("artifact", ""),
                   options=dict(data.get("options", {})), module=data.get("module"),
                   label=data.get("label"))

    def open(self, **extra_options: Any) -> Session:
        """Opens the session in *this* process (the child uses it; tests may too)."""
        opener = get_opener(self.runtime, self.resolved_module())
        return opener(str(self.artifact), {**self.options, **extra_options})


def registered_opener_module(runtime: str) -> str | None:
    """The opener module of the runtime registered as `runtime` in RUNTIMES, or None."""
    found = RUNTIMES.find(runtime)
    return found.opener_module if found is not None else None


def unknown_runtime_message(runtime: str) -> str:
    """"unknown runtime ...; did you mean ...?" over the runtimes the child could open."""
    known = sorted(set(RUNTIMES.names()) | set(OPENERS.names()))
    close = difflib.get_close_matches(runtime, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
    return f"unknown runtime {runtime!r}; {hint}"


def get_opener(runtime: str, module: str | None = None) -> Opener:
    """Imports `module` (which registers openers as a side effect) and returns the opener.

    Raises:
        ImportError: the module or the runtime library it needs is not installed.
        ConfigError: the module does not register `runtime`.
    """
    if runtime not in OPENERS:
        module = module or registered_opener_module(runtime)
    if runtime not in OPENERS and module:
        importlib.import_module(module)
    return OPENERS.get(runtime)


__all__ = ["OPENERS", "Opener", "Session", "SessionFactory", "TESTING_MODULE", "get_opener",
           "registered_opener_module", "unknown_runtime_message"]
