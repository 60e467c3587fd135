"""Shared fixtures and NumPy references of the qtx pytest suite.

The references are written for clarity in float64 (float paths) or in the exact float32 /
integer arithmetic qtx defines (integer paths), independently of the C++ code.
"""
import numpy as np
import pytest

F32_EPS = float(np.finfo(np.float32).eps)


@pytest.fixture
def rng():
    return np.random.default_rng(20231204)


def quantize_ref(x, scale, zero_point, dtype=np.uint8):
    """clamp(round_half_even(x * float32(1/scale)) + zp); NaN -> zp (qtx's quantize_one)."""
    info = np.iinfo(dtype)
    inv = np.float32(1.0) / np.float32(scale)
    with np.errstate(invalid="ignore", over="ignore"):
        prod = np.asarray(x, np.float32) * inv
        q = np.rint(prod).astype(np.float64)
    q = np.where(np.isnan(q), 0, q) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def softmax_ref(x, input_scale=1.0, gamma=0.0, zeta=1.0, mask=None, causal=False, causal_offset=0):
    """clip((zeta - gamma) * softmax(input_scale * x + mask) + gamma, 0, 1) in float64."""
    z = np.asarray(x, np.float64) * input_scale
    if mask is not None:
        z = z + np.asarray(mask, np.float64)
    z = np.atleast_2d(z).copy()
    rows, cols = z.shape
    if causal:
        visible = np.arange(cols)[None, :] <= (np.arange(rows)[:, None] + causal_offset)
        z = np.where(visible, z, -np.inf)
    m = z.max(axis=1, keepdims=True)
    m = np.where(np.isinf(m) & (m < 0), 0.0, m)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    p = np.divide(e, s, out=np.zeros_like(e), where=s > 0)
    y = np.clip((zeta - gamma) * p + gamma, 0.0, 1.0)
    if causal:
        y = np.where(visible, y, 0.0)
    return y.reshape(np.shape(x)) if np.ndim(x) == 1 else y


def layer_norm_ref(x, weight, bias, eps=1e-5):
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def gate_ref(kind, H, dh, x, w1=None, b1=None, w2=None, b2=None, hidden=0):
    T = x.shape[0]
    xh = x.reshape(T, H, dh).astype(np.float64)
    if kind == "linear_per_head":
        z = np.einsum("thd,hd->th", xh, w1.reshape(H, dh)) + b1
    elif kind == "mlp_per_head":
        a = np.maximum(np.einsum("thd,hjd->thj", xh, w1.reshape(H, hidden, dh)) + b1.reshape(H, hidden), 0)
        z = np.einsum("thj,hj->th", a, w2.reshape(H, hidden)) + b2
    elif kind == "all_heads_linear":
        z = x.astype(np.float64) @ w1.reshape(H, H * dh).T + b1
    else:
        z = np.broadcast_to(b1, (T, H))
    return sigmoid(z)


def random_tensor(rng):
    """f(*shape): random float32 weights with rows scaled by 1/sqrt(fan-in) (activations stay O(1))."""
    return lambda *s: (rng.normal(size=s) / np.sqrt(s[-1])).astype(np.float32)


def random_layer_tensors(rng, prefix, linears, norms, gate=None, heads=1):
    """One encoder layer's tensors of a checkpoint: each (name, out, in) of `linears` gets .weight and
    .bias, each name of `norms` a LayerNorm's .weight (~1) and .bias; gate = the gate's name for a
    linear_per_head gate over `heads` heads of width linears[0]'s in / heads."""
    f = random_tensor(rng)
    w = {}
    for name, rows, cols in linears:
        w[prefix + name + ".weight"], w[prefix + name + ".bias"] = f(rows, cols), f(rows) * 0.1
    for name in norms:
        w[prefix + name + ".weight"], w[prefix + name + ".bias"] = 1 + f(linears[0][1]) * 0.1, f(linears[0][1]) * 0.1
    if gate:
        d = linears[0][2]
        w[prefix + gate + ".weight"], w[prefix + gate + ".bias"] = f(heads, d // heads), f(heads)
    return w
