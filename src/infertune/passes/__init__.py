"""Optimization passes: one module per pass, each registered under its name with
@register_pass. Importing this package imports each pass module by name, one line each."""
from .base import PASSES, PassContext, PassResult, PassSpec, parse_pass_arg, register_pass
from .pipeline import apply_passes, model_bytes, resolve_steps

# Pass modules (one line each; the order is the order of `infertune list passes`).
from . import fold_bn  # noqa: E402,F401
from . import fuse_activation  # noqa: E402,F401
from . import merge_siblings  # noqa: E402,F401
from . import cleanup  # noqa: E402,F401
from . import channels_last  # noqa: E402,F401
from . import fp16  # noqa: E402,F401
from . import bf16  # noqa: E402,F401
from . import int8_dynamic  # noqa: E402,F401
from . import int8_static  # noqa: E402,F401
from . import mixed_precision  # noqa: E402,F401
from . import prune_channels  # noqa: E402,F401
from . import prune_magnitude  # noqa: E402,F401
from . import low_rank  # noqa: E402,F401
from . import finetune  # noqa: E402,F401
from . import distill  # noqa: E402,F401
from . import qat  # noqa: E402,F401

__all__ = ["PASSES", "PassContext", "PassResult", "PassSpec", "apply_passes", "model_bytes",
           "parse_pass_arg", "register_pass", "resolve_steps"]
