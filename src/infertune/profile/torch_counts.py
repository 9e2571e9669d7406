"""Per-layer counts of a torch.nn.Module from one forward pass at batch 1 (CPU tensors unless
the model lives elsewhere), under `torch.inference_mode()`.

Eager modules: a "layer" is a module with no children, a convolution/linear module, or one
whose class sets `profile_as_layer = True` (the Darknet layers); we never descend into a layer.
Forward hooks record each layer's inputs/outputs; MACs come from a TorchDispatchMode that sees
every convolution and linear *operator*, so functional convs inside a Darknet layer are counted
too, and are credited to the layer whose forward is running. A layer called twice has one row
(first call decides its place and output shape) with MACs and bytes summed over its `calls`.

TorchScript modules run their submodules inside the interpreter, where Python hooks never fire
(scripted submodules ignore them; a loaded archive refuses them). The operator stream is still
visible to the dispatch mode, so a scripted model gets one row per module whose weights an
operator read (convolutions, linear, normalisation...), plus rows for convolution/linear ops on
constant weights (frozen models). Weight-free layers (activations, pooling) have no row there;
the result carries a `note` saying so.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from ..errors import UnsupportedModel
from ..tensors import tensors_in
from .rows import OTHER_ROW, LayerStats, assemble, strip_batch

_CONV_OPS = {"conv1d", "conv2d", "conv3d", "convolution", "_convolution",
             "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
_TRANSPOSED_OPS = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
_SCRIPT_NOTE = ("TorchScript: Python hooks do not run inside scripted code, so layers are the "
                "modules whose weights an operator read; weight-free layers (activations, "
                "pooling) have no row and are missing from activation_bytes and mac_bytes. "
                "Profile the eager model for every layer.")


# --------------------------------------------------------------------------- shared helpers


def op_macs(op: str, args: tuple, kwargs: dict, out: Any) -> int:
    """MACs of one aten convolution or linear call (0 for any other operator)."""
    import torch

    if op != "linear" and op not in _CONV_OPS:
        return 0
    weight = args[1] if len(args) > 1 else kwargs.get("weight")
    if not isinstance(out, torch.Tensor) or not isinstance(weight, torch.Tensor):
        return 0
    if op == "linear":  # weight [out, in]: every output element reduces over `in`
        return out.numel() * int(weight.shape[-1])
    # conv weight [out, in/groups, *k]; transposed weight [in, out/groups, *k].
    per_element = math.prod(int(d) for d in weight.shape[1:])
    transposed = op in _TRANSPOSED_OPS or (op in ("convolution", "_convolution") and bool(args[6]))
    return (args[0].numel() if transposed else out.numel()) * per_element


def nbytes(tensors: Iterable) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def shape_of(obj: Any) -> Any:
    """Output shape(s) without batch: one list for a tensor, a list of lists for several."""
    shapes = [strip_batch(t.shape) for t in tensors_in(obj)]
    return shapes[0] if len(shapes) == 1 else shapes


def _counted(name: str) -> bool:
    # BatchNorm's integer step counter is training state, not something inference reads.
    return not name.endswith("num_batches_tracked")


def _op_watcher(on_op: Callable[[str, tuple, dict, Any], None]):
    """A TorchDispatchMode calling on_op(name, args, kwargs, out) after every operator."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _OpWatcher(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            on_op(func.overloadpacket.__name__, args, kwargs, out)
            return out

    return _OpWatcher()


def _dummy_input(model, chw: tuple[int, int, int], dtype: str):
    """Zeros at batch 1 on the model's device, in the model's float dtype for float inputs."""
    import torch

    want = getattr(torch, dtype, torch.float32)
    tensors = list(model.parameters()) + list(model.buffers())
    floats = [t for t in tensors if t.is_floating_point()]
    if want.is_floating_point and floats:
        want = floats[0].dtype
    device = tensors[0].device if tensors else torch.device("cpu")
    return torch.zeros((1, *chw), dtype=want, device=device)


def _run(model, x, watcher) -> Any:
    """One forward under inference_mode and the watcher; a failure is the user's model's."""
    import torch

    was_training = model.training
    model.eval()  # BatchNorm must use (and not update) its running statistics
    try:
        with torch.inference_mode(), watcher:
            return model(x)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise UnsupportedModel(f"the model's forward at input {list(x.shape)} failed: "
                               f"{lines[0][:300] if lines else type(exc).__name__}") from None
    finally:
        model.train(was_training)


def _other_row(model, claimed: set, macs: int = 0) -> LayerStats | None:
    """Parameters/buffers no layer claimed (bare container parameters, uncalled modules)."""
    row = LayerStats(OTHER_ROW, "unattributed", macs=macs)
    sources = ((model.named_parameters(), "params"), (model.named_buffers(), "buffers"))
    for tensors, field in sources:
        for name, tensor in tensors:
            if _counted(name) and _key(tensor) not in claimed:
                claimed.add(_key(tensor))
                setattr(row, field, getattr(row, field) + tensor.numel())
                row.weight_bytes += tensor.numel() * tensor.element_size()
    return None if row.is_empty() else row


def _key(tensor) -> tuple:
    """Identity of a tensor's data (the dispatch mode may see a different Python wrapper)."""
    return (tensor.data_ptr(), tuple(tensor.shape), tensor.dtype)


def profile_torch(model, chw: tuple[int, int, int], *, dtype: str = "float32",
                  name: str = "model") -> dict[str, Any]:
    """Profiles an nn.Module (eager or TorchScript) at batch 1; see the module docstring."""
    import torch

    x = _dummy_input(model, chw, dtype)
    if isinstance(model, torch.jit.ScriptModule):
        rec = _ScriptRecorder(model)
        output = _run(model, x, _op_watcher(rec.on_op))
        layers = rec.layers()
        result = assemble(name, chw, shape_of(output), layers)
        result["note"] = _SCRIPT_NOTE
        return result
    rec = _EagerRecorder(model)
    try:
        output = _run(model, x, _op_watcher(rec.on_op))
    finally:
        rec.remove_hooks()
    return assemble(name, chw, shape_of(output), rec.layers())


# --------------------------------------------------------------------------- eager modules


def layer_modules(model) -> list[tuple[str, Any]]:
    """(name, module) of every layer, in registration order, shared modules once."""
    rows: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(name: str, module) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        if is_layer(module) or module is not model and _is_scripted(module):
            rows.append((name or type(module).__name__, module))
            return
        for child_name, child in module.named_children():
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", model)
    return rows


def is_layer(module) -> bool:
    """A leaf, a conv/linear (even when parametrizations give it children), or opted in."""
    import torch

    if getattr(module, "profile_as_layer", False) is True:
        return True
    if isinstance(module, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)):
        return True
    return next(module.children(), None) is None


def _is_scripted(module) -> bool:
    import torch

    return isinstance(module, torch.jit.ScriptModule)


def layer_type(module) -> str:
    """Darknet layers name themselves (`darknet_type = "convolutional"`); else the class."""
    darknet = getattr(module, "darknet_type", None)
    return darknet if isinstance(darknet, str) and darknet else type(module).__name__


class _EagerRecorder:
    """Forward pre-/post-hooks on every layer plus the operator callback for MACs."""

    def __init__(self, model):
        self.model = model
        self.rows: dict[int, LayerStats] = {}  # id(module) -> row, in first-call order
        self.modules: dict[int, Any] = {}
        self.stack: list[LayerStats] = []
        self.outside_macs = 0  # MACs of ops run by a container's own forward
        self.handles = []
        for name, module in layer_modules(model):
            self._hook(name, module)

    def _hook(self, name: str, module) -> None:
        if _is_scripted(module):
            return  # hooks are refused; its weights end up in the "(other)" row
        read = nbytes(t for n, t in _named_tensors(module) if _counted(n))

        def pre(mod, args):
            row = self.rows.get(id(mod))
            if row is None:
                row = self.rows[id(mod)] = LayerStats(name, layer_type(mod))
                self.modules[id(mod)] = mod
            self.stack.append(row)

        def post(mod, args, kwargs, output):
            row = self.stack.pop()
            row.calls += 1
            out_bytes = nbytes(tensors_in(output))
            row.activation_bytes += out_bytes
            row.mac_bytes += nbytes(tensors_in((args, kwargs))) + read + out_bytes
            if row.output_shape is None:
                row.output_shape = shape_of(output)

        self.handles.append(module.register_forward_pre_hook(pre))
        self.handles.append(module.register_forward_hook(post, with_kwargs=True))

    def on_op(self, op: str, args: tuple, kwargs: dict, out: Any) -> None:
        macs = op_macs(op, args, kwargs, out)
        if not macs:
            return
        if self.stack:
            self.stack[-1].macs += macs
        else:
            self.outside_macs += macs

    def remove_hooks(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def layers(self) -> list[LayerStats]:
        """The rows with their weights (each tensor counted at its first use) and "(other)"."""
        claimed: set = set()
        rows = list(self.rows.values())
        for key, row in self.rows.items():
            for tensor_name, tensor, is_buffer in _weights_of(self.modules[key]):
                if not _counted(tensor_name) or _key(tensor) in claimed:
                    continue
                claimed.add(_key(tensor))
                if is_buffer:
                    row.buffers += tensor.numel()
                else:
                    row.params += tensor.numel()
                row.weight_bytes += tensor.numel() * tensor.element_size()
        other = _other_row(self.model, claimed, self.outside_macs)
        return rows + ([other] if other else [])


def _named_tensors(module) -> list:
    return list(module.named_parameters()) + list(module.named_buffers())


def _weights_of(module) -> list:
    return ([(n, t, False) for n, t in module.named_parameters()]
            + [(n, t, True) for n, t in module.named_buffers()])


# --------------------------------------------------------------------------- TorchScript


class _ScriptRecorder:
    """Rows from the operator stream: each op reading a module's weights belongs to it."""

    def __init__(self, model):
        self.model = model
        self.owner: dict[tuple, tuple[str, Any, bool]] = {}  # tensor key -> (module, mod, buffer?)
        for mod_name, module in model.named_modules():
            for tensor_name, tensor, is_buffer in _own_weights(module):
                if _counted(tensor_name):
                    self.owner.setdefault(_key(tensor), (mod_name, module, is_buffer))
        self.rows: dict[Any, LayerStats] = {}
        self.weights: dict[Any, dict[tuple, tuple[Any, bool]]] = {}

    def on_op(self, op: str, args: tuple, kwargs: dict, out: Any) -> None:
        tensors = tensors_in((args, kwargs))
        owned = [t for t in tensors if _key(t) in self.owner]
        macs = op_macs(op, args, kwargs, out)
        if not owned and not macs:
            return  # a weight-free op: no module to put it in
        if owned:
            mod_name, module, _ = self.owner[_key(owned[0])]
            row_key, label = mod_name, getattr(module, "original_name", type(module).__name__)
            weights = {_key(t): (t, self.owner[_key(t)][2]) for t in owned}
        else:  # convolution/linear on constant weights (a frozen module)
            weights = {_key(t): (t, False) for t in tensors[1:3]}
            row_key, label = _key(tensors[1]), op
            mod_name = f"{op}_{len(self.rows)}"
        row = self.rows.get(row_key)
        if row is None:
            row = self.rows[row_key] = LayerStats(mod_name or label, label)
        self.weights.setdefault(row_key, {}).update(weights)
        self._account(row, [t for t in tensors if _key(t) not in weights], weights, out, macs)

    @staticmethod
    def _account(row: LayerStats, inputs: list, weights: dict, out: Any, macs: int) -> None:
        row.calls += 1
        row.macs += macs
        out_bytes = nbytes(tensors_in(out))
        row.activation_bytes += out_bytes
        row.mac_bytes += nbytes(inputs) + nbytes(t for t, _ in weights.values()) + out_bytes
        if row.output_shape is None:
            row.output_shape = shape_of(out)

    def layers(self) -> list[LayerStats]:
        claimed: set = set()
        rows = list(self.rows.values())
        for row_key, row in self.rows.items():
            for key, (tensor, is_buffer) in self.weights[row_key].items():
                if key in claimed:
                    continue
                claimed.add(key)
                if is_buffer:
                    row.buffers += tensor.numel()
                else:
                    row.params += tensor.numel()
                row.weight_bytes += tensor.numel() * tensor.element_size()
        other = _other_row(self.model, claimed)
        return rows + ([other] if other else [])


def _own_weights(module) -> list:
    return ([(n, t, False) for n, t in module.named_parameters(recurse=False)]
            + [(n, t, True) for n, t in module.named_buffers(recurse=False)])
