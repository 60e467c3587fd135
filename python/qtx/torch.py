"""qtx kernels as PyTorch operators (torch.library, namespace ``qtx``) and a drop-in W8A8 Linear.

Importing this module registers, for CPU float32 tensors (inference: no autograd):

  torch.ops.qtx.clipped_softmax(x, gamma=0.0, zeta=1.0)
      clip((zeta - gamma) * softmax(x) + gamma, 0, 1) over the last dimension (gamma 0, zeta 1:
      the plain softmax).
  torch.ops.qtx.gated_attention(q, k, v, gate, n_heads, gamma=0.0, zeta=1.0, causal=False, key_mask=None)
      (T, D) or (B, T, D) q, k, v with the heads side by side; gate (T, n_heads) or (B, T, n_heads)
      probabilities (None: no gate); key_mask (Tk) or (B, Tk), added to the scores.
  torch.ops.qtx.w8a8_linear(x, weight, weight_scale, bias, x_scale, x_zero_point)
      x quantized to uint8 with (x_scale, x_zero_point), int8 weight (out, in) with one scale per
      output channel, int32 accumulation, float32 out = acc * x_scale * weight_scale + bias.
  torch.ops.qtx.w8a8_linear_dynamic(x, weight, weight_scale, bias)
      the same with x quantized per token (row), its range measured in the same pass.

W8A8Linear.from_float(linear, x_range=None) wraps a torch.nn.Linear (per-channel symmetric int8
weights; static activations from x_range, dynamic per token without), and swap_linears(model)
replaces a model's Linear layers in place, so a float model and its qtx W8A8 twin run side by side.
Every op checks its inputs: wrong dtype / device / shape -> TypeError or ValueError, never a crash.
"""
import math
import weakref
from typing import Optional, Tuple

import torch

from . import _qtx

__all__ = ["W8A8Linear", "swap_linears", "quantize_weight"]

_lib = torch.library.Library("qtx", "DEF")
_lib.define("clipped_softmax(Tensor x, float gamma=0.0, float zeta=1.0) -> Tensor")
_lib.define("gated_attention(Tensor q, Tensor k, Tensor v, Tensor? gate, int n_heads, float gamma=0.0, "
            "float zeta=1.0, bool causal=False, Tensor? key_mask=None) -> Tensor")
_lib.define("w8a8_linear(Tensor x, Tensor weight, Tensor weight_scale, Tensor? bias, float x_scale, "
            "int x_zero_point) -> Tensor")
_lib.define("w8a8_linear_dynamic(Tensor x, Tensor weight, Tensor weight_scale, Tensor? bias) -> Tensor")


def _check(op: str, name: str, t: torch.Tensor, dtype: torch.dtype, dims: Tuple[int, ...],
           contiguous: bool = True) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"qtx.{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"qtx.{op}: {name} must be on the CPU, got {t.device}")
    if t.dtype != dtype:
        raise TypeError(f"qtx.{op}: {name} must be {dtype}, got {t.dtype}")
    if t.dim() not in dims:
        raise ValueError(f"qtx.{op}: {name} must have {' or '.join(map(str, dims))} dimensions, got shape {tuple(t.shape)}")
    return t.contiguous() if contiguous else t


def _rows(t: torch.Tensor) -> torch.Tensor:
    """The tensor as rows of its last dimension (a view: t is contiguous)."""
    return t.reshape(-1, t.shape[-1]) if t.dim() != 2 else t


def _clipped_softmax(x, gamma=0.0, zeta=1.0):
    x = _check("clipped_softmax", "x", x, torch.float32, tuple(range(1, 9)))
    out = torch.empty_like(x)
    if x.numel():
        _qtx.softmax(_rows(x), _rows(out), gamma=gamma, zeta=zeta)
    return out


def _gated_attention(q, k, v, gate, n_heads, gamma=0.0, zeta=1.0, causal=False, key_mask=None):
    op = "gated_attention"
    q, k, v = (_check(op, n, t, torch.float32, (2, 3)) for n, t in (("q", q), ("k", k), ("v", v)))
    if not q.dim() == k.dim() == v.dim():
        raise ValueError(f"qtx.{op}: q, k and v must all be 2-D or all 3-D, got {q.dim()}, {k.dim()}, {v.dim()}")
    if gate is not None:
        gate = _check(op, "gate", gate, torch.float32, (q.dim(),))
    if key_mask is not None:
        key_mask = _check(op, "key_mask", key_mask, torch.float32, (1, 2))
    batched = q.dim() == 3
    if not batched:
        q, k, v = q[None], k[None], v[None]
        gate = gate[None] if gate is not None else None
    if batched and not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError(f"qtx.{op}: q, k, v batch sizes differ: {q.shape[0]}, {k.shape[0]}, {v.shape[0]}")
    if key_mask is not None and key_mask.dim() == 1:
        key_mask = key_mask[None].expand(q.shape[0], -1)
    if key_mask is not None and key_mask.shape[0] != q.shape[0]:
        raise ValueError(f"qtx.{op}: key_mask has {key_mask.shape[0]} rows for a batch of {q.shape[0]}")
    out = torch.empty_like(q)
    for b in range(q.shape[0]):
        _qtx.attention(q[b], k[b], v[b], out[b], n_heads=n_heads, gamma=gamma, zeta=zeta, causal=causal,
                       gate=None if gate is None else gate[b],
                       key_mask=None if key_mask is None else key_mask[b].contiguous())
    return out if batched else out[0]


# What the GEMM needs per weight, prepared once per weight tensor and version (an op call passes
# the plain int8 tensor each time): the packed weight and its column sums. An entry is used only
# for the very tensor object it was made from (a weak reference), never for another tensor that
# happens to reuse the memory.
_prepared = {}


def _prepared_weight(op: str, weight: torch.Tensor):
    # The caller's tensor itself (pack_b reads any strides), so that a strided weight is prepared
    # once too, not copied and repacked on every call.
    weight = _check(op, "weight", weight, torch.int8, (2,), contiguous=False)
    key = (weight.data_ptr(), weight._version, tuple(weight.shape))
    entry = _prepared.get(key)
    if entry is None or entry[0]() is not weight:
        if len(_prepared) > 256:
            _prepared.clear()
        entry = _prepared[key] = (weakref.ref(weight), _qtx.pack_b(weight.T), weight.sum(1, dtype=torch.int32))
    return weight, entry[1], entry[2]


def _linear_arguments(op, x, weight, weight_scale, bias):
    x = _check(op, "x", x, torch.float32, tuple(range(1, 9)))
    weight, packed, column_sums = _prepared_weight(op, weight)
    n, k = weight.shape
    if x.shape[-1] != k:
        raise ValueError(f"qtx.{op}: x has {x.shape[-1]} features, the weight takes {k}")
    weight_scale = _check(op, "weight_scale", weight_scale, torch.float32, (1,))
    if weight_scale.shape[0] != n:
        raise ValueError(f"qtx.{op}: weight_scale has {weight_scale.shape[0]} values for {n} output channels")
    if bias is not None:
        bias = _check(op, "bias", bias, torch.float32, (1,))
        if bias.shape[0] != n:
            raise ValueError(f"qtx.{op}: bias has {bias.shape[0]} values for {n} output channels")
    return x, packed, column_sums, weight_scale, bias, n


def _w8a8_linear(x, weight, weight_scale, bias, x_scale, x_zero_point):
    op = "w8a8_linear"
    x, packed, _, weight_scale, bias, n = _linear_arguments(op, x, weight, weight_scale, bias)
    params = _qtx.QuantParams(x_scale, x_zero_point)
    xq = torch.empty(x.shape, dtype=torch.uint8)
    out = torch.empty(x.shape[:-1] + (n,), dtype=torch.float32)
    if x.numel() == 0:
        return out
    _qtx.quantize(_rows(x), params, _rows(xq))
    stages = [_qtx.epilogue.dequantize(weight_scale * x_scale)]
    if bias is not None:  # float, added in the GEMM's pass
        stages.append(_qtx.epilogue.bias(bias))
    _qtx.gemm(_rows(xq), packed, _rows(out), epilogue=stages, a_zero_point=x_zero_point)
    return out


def _w8a8_linear_dynamic(x, weight, weight_scale, bias):
    op = "w8a8_linear_dynamic"
    x, packed, column_sums, weight_scale, bias, n = _linear_arguments(op, x, weight, weight_scale, bias)
    out = torch.empty(x.shape[:-1] + (n,), dtype=torch.float32)
    if x.numel() == 0:
        return out
    xq, scales, zero_points = _qtx.quantize_dynamic(_rows(x), "token")
    # One pass: acc - zp[m]·Σ_k w[k, n] (the exact integer product of the centred row), times the
    # row's and the channel's scales, plus the float bias.
    stages = [_qtx.epilogue.subtract_row_zero_point(zero_points, column_sums),
              _qtx.epilogue.dequantize_rows(scales, weight_scale)]
    if bias is not None:
        stages.append(_qtx.epilogue.bias(bias))
    _qtx.gemm(xq, packed, _rows(out), epilogue=stages)
    return out


_lib.impl("clipped_softmax", _clipped_softmax, "CPU")
_lib.impl("gated_attention", _gated_attention, "CPU")
_lib.impl("w8a8_linear", _w8a8_linear, "CPU")
_lib.impl("w8a8_linear_dynamic", _w8a8_linear_dynamic, "CPU")


def quantize_weight(weight: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel (rows of a Linear's (out, in) weight): (int8 weight, scales).
    The scale of a row is max|w| / 127 (1 for an all-zero row)."""
    w = _check("quantize_weight", "weight", weight.detach(), torch.float32, (2,))
    absmax = w.abs().amax(1)
    if not torch.isfinite(absmax).all():
        raise ValueError("qtx.quantize_weight: weight holds a NaN or infinite value")
    scale = torch.where(absmax > 0, absmax / 127.0, torch.ones_like(absmax))
    q = torch.clamp(torch.round(w / scale[:, None]), -127, 127).to(torch.int8)
    return q, scale


class W8A8Linear(torch.nn.Module):
    """A Linear layer run by qtx in int8: per-channel int8 weights; activations uint8, static
    (x_scale, x_zero_point from a calibrated range) or dynamic per token (x_scale None)."""

    def __init__(self, weight_q: torch.Tensor, weight_scale: torch.Tensor, bias: Optional[torch.Tensor],
                 x_scale: Optional[float] = None, x_zero_point: int = 0):
        super().__init__()
        self.register_buffer("weight_q", weight_q)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)
        self.x_scale, self.x_zero_point = x_scale, x_zero_point
        self.in_features, self.out_features = weight_q.shape[1], weight_q.shape[0]

    @classmethod
    def from_float(cls, linear: torch.nn.Linear, x_range: Optional[Tuple[float, float]] = None) -> "W8A8Linear":
        """linear's weights quantized per channel; x_range (lo, hi): static uint8 activations on
        that range (widened to include 0), None: dynamic per token."""
        if not isinstance(linear, torch.nn.Linear):
            raise TypeError(f"qtx.W8A8Linear.from_float: expects a torch.nn.Linear, got {type(linear).__name__}")
        q, scale = quantize_weight(linear.weight)
        bias = None if linear.bias is None else linear.bias.detach().to(torch.float32).contiguous()
        if x_range is None:
            return cls(q, scale, bias)
        lo, hi = x_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"qtx.W8A8Linear.from_float: x_range ({lo}, {hi}) must be finite with lo <= hi")
        p = _qtx.asymmetric_params(lo, hi)
        return cls(q, scale, bias, p.scale, p.zero_point)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.x_scale is None:
            return torch.ops.qtx.w8a8_linear_dynamic(x, self.weight_q, self.weight_scale, self.bias)
        return torch.ops.qtx.w8a8_linear(x, self.weight_q, self.weight_scale, self.bias, self.x_scale, self.x_zero_point)

    def extra_repr(self) -> str:
        mode = "dynamic per token" if self.x_scale is None else f"static scale={self.x_scale:.4g} zp={self.x_zero_point}"
        return f"in_features={self.in_features}, out_features={self.out_features}, {mode}"


def swap_linears(model: torch.nn.Module, ranges: Optional[dict] = None) -> torch.nn.Module:
    """Replaces every torch.nn.Linear in model (in place) by a W8A8Linear: static with ranges[name]
    = (lo, hi) for the Linear's qualified name when given, dynamic per token otherwise. Returns model."""
    ranges = ranges or {}
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear):
                full = f"{name}.{child_name}" if name else child_name
                setattr(module, child_name, W8A8Linear.from_float(child, ranges.get(full)))
    return model
