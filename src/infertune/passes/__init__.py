"""Optimization passes: one module per pass, each registered under its name with
@register_pass. Importing this package imports each pass module by name, one line each."""
from .base import PASSES, PassContext, PassResult, PassSpec, parse_pass_arg, register_pass
from .pipeline import apply_passes, model_bytes, resolve_steps

# Pass modules (one line each; the order is the order of `infertune list passes`).

__all__ = ["PASSES", "PassContext", "PassResult", "PassSpec", "apply_passes", "model_bytes",
           "parse_pass_arg", "register_pass", "resolve_steps"]
