"""Exceptions. Everything derived from InfertuneError is a *user* error: the CLI prints its
one-line message and exits with status 2, without a traceback. Anything else is a bug."""


class InfertuneError(Exception):
    """A problem with the user's input (file, flag, config). The message is one line."""

    def __init__(self, message: str, *, path: str | None = None):
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class ConfigError(InfertuneError):
    """A bad flag, option or config value."""


class ModelFileError(InfertuneError):
    """A model file that cannot be read: missing, a directory, corrupt, truncated, unsafe."""


class DarknetCfgError(ModelFileError):
    """A Darknet .cfg that does not follow the grammar (message names the line)."""


class WeightsError(ModelFileError):
    """A .weights file that does not fit its cfg (message says expected vs found)."""


class UnsupportedModel(InfertuneError):
    """A model that is valid but that infertune cannot handle (yet)."""


class DataError(InfertuneError):
    """Bad input data (unreadable image, wrong shape, label out of range)."""


class OutputError(InfertuneError):
    """An output that cannot be written: read-only folder, full disk (message names the path)."""


class PassNotApplicable(InfertuneError):
    """A pass that cannot apply to this model; recorded as a result, not raised to the user."""


class RuntimeUnavailable(InfertuneError):
    """A runtime whose library or hardware is missing here."""


def first_line(exc: BaseException, *, with_type: bool = False, limit: int = 300) -> str:
    """The first line of an exception's message, at most `limit` characters (the type's name
    when the message is empty). Third-party errors can span pages (ORT, TensorRT, tf2onnx);
    a one-line excerpt keeps user errors and result reasons to one line. `with_type` prefixes
    the type's name, for reasons where the kind of failure matters (a build's crash)."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    text = lines[0][:limit]
    return f"{type(exc).__name__}: {text}" if with_type else text
