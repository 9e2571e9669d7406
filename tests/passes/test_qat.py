"""qat: the result is an INT8 PT2E program (quantize/dequantize ops around the convs and
the linear, int8 weights), its training loss fell, it agrees with the float teacher more
than the perturbed student it started from, and the input model is untouched.

The student starts as the teacher with large weight noise (KL to the teacher ~1), so that
distillation has a wide margin to show; INT8 rounding adds ~1e-3 of KL, far below it.
"""
from __future__ import annotations

import copy

import pytest
import torch
from extras import require_extra
from recovery_helpers import CHW, dataset, handle, kl_to_teacher, noisy_copy, teacher_net

from infertune.passes import PassContext, apply_passes

require_extra("torchao")


def test_qat_gives_an_int8_program_closer_to_the_teacher(tmp_path):
    teacher = teacher_net()
    student = handle(noisy_copy(teacher.obj, 1.5, seed=7))
    before = copy.deepcopy(student.obj.state_dict())
    x_test = torch.from_numpy(dataset(200, False, seed=2).x)
    kl0 = kl_to_teacher(student.obj, teacher.obj, x_test)
    ctx = PassContext(workdir=tmp_path, train=dataset(300, False), reference=teacher, seed=0,
                      threads=1)
    out, reports = apply_passes(student, [("qat", {"steps": 60, "lr": 5e-3, "val_every": 20,
                                                   "quiet": True})], ctx)
    r = reports[0]
    assert r["applied"], r["reason"]
    assert out.meta["precision"] == "int8"
    # INT8 structure: every conv/linear takes its weight through a dequantize op
    assert r["layers"] == 2 and len(r["quantized"]) == 2 and not r["kept_float"]
    targets = [str(n.target) for n in out.obj.graph.nodes if n.op == "call_function"]
    assert any("quantize_per_tensor" in t for t in targets)
    assert any("dequantize_per_channel" in t for t in targets)
    int8 = [b for b in list(out.obj.buffers()) + list(out.obj.parameters())
            if b.dtype == torch.int8]
    assert int8, "no int8 weight tensors in the converted program"
    assert r["loss_last10"] < r["loss_first10"]
    kl1 = kl_to_teacher(out.obj, teacher.obj, x_test)
    assert kl1 < 0.5 * kl0, (kl0, kl1)
    assert all(torch.equal(v, student.obj.state_dict()[k]) for k, v in before.items())
    assert out.obj(torch.randn(3, *CHW)).shape == (3, 4)  # dynamic batch kept


def test_qat_refuses_without_data(tmp_path):
    student = handle(noisy_copy(teacher_net().obj, 0.1, seed=1))
    from infertune.passes.qat import QatConfig, apply

    result = apply(student, QatConfig(steps=2, quiet=True), PassContext(workdir=tmp_path))
    assert not result.applied and "training data" in result.reason
