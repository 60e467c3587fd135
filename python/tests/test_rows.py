"""Row operations against NumPy references: softmax, layer norm, GELU, (de/re)quantize."""
import math

import numpy as np
import pytest

import qtx
from conftest import F32_EPS, layer_norm_ref, quantize_ref, softmax_ref

SHAPES = [(1, 1), (1, 7), (3, 16), (5, 17), (2, 128), (7, 33), (4, 1000)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gamma,zeta", [(0.0, 1.0), (-0.03, 1.0), (-0.1, 1.05)])
def test_softmax_float(rng, shape, gamma, zeta):
    x = rng.normal(scale=3.0, size=shape).astype(np.float32)
    y = qtx.softmax(x, gamma=gamma, zeta=zeta, input_scale=0.5)
    want = softmax_ref(x, 0.5, gamma, zeta)
    # test_softmax.cpp: 16 eps relative to |ref| + |gamma| (probabilities computed in float).
    assert np.all(np.abs(y - want) <= 16 * F32_EPS * (np.abs(want) + abs(gamma)) + 1e-38)


def test_softmax_mask_causal_and_int32(rng):
    x = rng.integers(-5000, 5000, size=(6, 9), dtype=np.int32)
    mask = np.zeros((1, 9), np.float32)
    mask[0, 7:] = -np.inf
    y = qtx.softmax(x, input_scale=1e-3, mask=mask, causal=True, causal_offset=2)
    want = softmax_ref(x.astype(np.float64), 1e-3, mask=mask, causal=True, causal_offset=2)
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-7)
    assert np.all(y[:, 7:] == 0)
    assert np.all(y[0, 3:] == 0)  # row 0 sees columns 0..2


def test_softmax_row_mask_and_1d(rng):
    x = rng.normal(size=(4, 12)).astype(np.float32)
    mask = rng.normal(size=(4, 12)).astype(np.float32)
    np.testing.assert_allclose(qtx.softmax(x, mask=mask), softmax_ref(x, mask=mask), rtol=2e-6, atol=1e-7)
    row = x[0]
    y = qtx.softmax(row)
    assert y.shape == row.shape
    np.testing.assert_allclose(y, softmax_ref(row), rtol=2e-6, atol=1e-7)


def test_softmax_uint8_output_in_place(rng):
    x = rng.normal(scale=2.0, size=(5, 40)).astype(np.float32)
    out = np.full((5, 40), 7, np.uint8)
    got = qtx.softmax(x, out, gamma=-0.025)
    assert got is out  # written in place, no copy
    want = quantize_ref(softmax_ref(x, gamma=-0.025).astype(np.float32), 1 / 255, 0)
    assert np.max(np.abs(out.astype(int) - want.astype(int))) <= 1  # a float tie may round either way
    p = qtx.QuantParams(1 / 254, -127)
    q = qtx.softmax(x, dtype=np.int8, out_params=p)
    assert q.dtype == np.int8
    assert np.max(np.abs(q.astype(int) - quantize_ref(softmax_ref(x), p.scale, -127, np.int8).astype(int))) <= 1


def test_softmax_in_place_and_strided(rng):
    x = rng.normal(size=(6, 20)).astype(np.float32)
    want = softmax_ref(x)
    y = x.copy()
    assert qtx.softmax(y, y) is y
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-7)
    big = rng.normal(size=(6, 40)).astype(np.float32)
    view = big[:, ::2]  # column stride 2: the reference path, still no copy
    np.testing.assert_allclose(qtx.softmax(view), softmax_ref(view), rtol=2e-6, atol=1e-7)
    out = np.zeros((6, 40), np.float32)
    qtx.softmax(big[:, :20], out[:, 20:])
    np.testing.assert_allclose(out[:, 20:], softmax_ref(big[:, :20]), rtol=2e-6, atol=1e-7)
    assert np.all(out[:, :20] == 0)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (4, 64), (5, 384), (2, 1025)])
def test_layer_norm(rng, shape):
    x = rng.normal(scale=2.0, size=shape).astype(np.float32) + 1.5
    w = rng.normal(size=shape[1]).astype(np.float32)
    b = rng.normal(size=shape[1]).astype(np.float32)
    y = qtx.layer_norm(x, w, b)
    want = layer_norm_ref(x, w, b)
    # test_layernorm.cpp: 32 eps relative to |y - b| + |w| + |b|.
    assert np.all(np.abs(y - want) <= 32 * F32_EPS * (np.abs(want - b) + np.abs(w) + np.abs(b)) + 1e-6)


def test_add_layer_norm_sum_and_quantized(rng):
    x = rng.normal(size=(6, 48)).astype(np.float32)
    r = rng.normal(size=(6, 48)).astype(np.float32)
    w = np.ones(48, np.float32)
    b = np.zeros(48, np.float32)
    s = np.empty_like(x)
    y = qtx.add_layer_norm(x, r, w, b, sum_out=s, eps=1e-6)
    np.testing.assert_array_equal(s, x + r)
    np.testing.assert_allclose(y, layer_norm_ref(x + r, w, b, 1e-6), atol=2e-5)
    p = qtx.QuantParams(0.05, 128)
    q = np.empty((6, 48), np.uint8)
    assert qtx.add_layer_norm(x, r, w, b, q, out_params=p) is q
    want = quantize_ref(layer_norm_ref(x + r, w, b).astype(np.float32), 0.05, 128)
    assert np.max(np.abs(q.astype(int) - want.astype(int))) <= 1


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(rng, approximate):
    x = rng.normal(scale=3.0, size=(5, 37)).astype(np.float32)
    xd = x.astype(np.float64)
    if approximate == "none":
        want = 0.5 * xd * (1 + np.vectorize(math.erf)(xd / math.sqrt(2)))
    else:
        want = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd**3)))
    got = qtx.gelu(x, approximate=approximate)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    qtx.gelu(x, x, approximate=approximate)  # in place
    np.testing.assert_array_equal(x, got)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_quantize_dequantize_bit_exact(rng, dtype):
    x = rng.normal(scale=4.0, size=(7, 93)).astype(np.float32)
    x[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    p = qtx.range_params(-6.0, 5.0, dtype)
    q = qtx.quantize(x, p, dtype=dtype)
    assert q.dtype == dtype
    np.testing.assert_array_equal(q, quantize_ref(x, p.scale, p.zero_point, dtype))
    back = qtx.dequantize(q, p)
    want = np.float32(p.scale) * (q.astype(np.int32) - p.zero_point).astype(np.float32)
    np.testing.assert_array_equal(back, want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_requantize_bit_exact(rng, dtype):
    acc = rng.integers(-(2**20), 2**20, size=(9, 31), dtype=np.int32)
    acc[0, :2] = [np.iinfo(np.int32).max, np.iinfo(np.int32).min]
    m, zp = 3.1e-5, 3
    q = qtx.requantize(acc, m, zp, dtype=dtype)
    np.testing.assert_array_equal(q, _requant_ref(acc, m, zp, dtype))
    f = qtx.to_fixed_point(m)
    exact = qtx.requantize(acc, f, zp, dtype=dtype)
    prod = acc.astype(object) * f.m0
    right = 31 - f.shift
    want = [_round_shift(int(v), right) + zp for v in prod.ravel()]
    info = np.iinfo(dtype)
    np.testing.assert_array_equal(exact.ravel(), np.clip(want, info.min, info.max).astype(dtype))


def _requant_ref(acc, multiplier, zp, dtype):
    """clamp(round_half_even(float32(acc) * float32(m)) + zp)."""
    info = np.iinfo(dtype)
    prod = acc.astype(np.float32) * np.float32(multiplier)
    return np.clip(np.rint(prod).astype(np.float64) + zp, info.min, info.max).astype(dtype)


def _round_shift(v, right):
    """v / 2**right rounded half to even, in exact integers."""
    floor_q, rem = divmod(v, 1 << right)
    half = 1 << (right - 1)
    return floor_q + (1 if rem > half or (rem == half and floor_q & 1) else 0)


def test_quant_params_helpers():
    p = qtx.asymmetric_params(-1.0, 3.0)
    assert p.scale == pytest.approx(4.0 / 255)
    assert p.zero_point == round(1.0 / p.scale)
    s = qtx.symmetric_params(2.54)
    assert s.scale == pytest.approx(0.02) and s.zero_point == 0
    assert qtx.gamma_for(12, 512) == pytest.approx(-12 / 512)
    assert qtx.probability_params.scale == pytest.approx(1 / 255)


@pytest.mark.parametrize("granularity", ["token", "tensor"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (5, 384), (33, 7)])
def test_quantize_dynamic_bit_exact(rng, granularity, shape):
    x = rng.normal(size=shape).astype(np.float32)
    x[0] *= 50.0  # an outlier token
    x[0, 0] = np.nan
    if shape[1] > 2:
        x[-1, 1:3] = [np.inf, -np.inf]
    q, scales, zero_points = qtx.quantize_dynamic(x, granularity)
    assert q.dtype == np.uint8 and q.shape == shape
    assert scales.shape == zero_points.shape == (shape[0],)
    finite = np.where(np.isfinite(x), x, 0.0)
    lo, hi = finite.min(axis=1), finite.max(axis=1)
    if granularity == "tensor":
        lo, hi = np.full_like(lo, lo.min()), np.full_like(hi, hi.max())
    for r in range(shape[0]):
        p = qtx.asymmetric_params(float(lo[r]), float(hi[r]))
        assert scales[r] == np.float32(p.scale) and zero_points[r] == p.zero_point
        np.testing.assert_array_equal(q[r], quantize_ref(x[r], p.scale, p.zero_point))


def test_quantize_dynamic_errors():
    with pytest.raises(ValueError, match="granularity must be 'token' or 'tensor'"):
        qtx.quantize_dynamic(np.zeros((2, 3), np.float32), "row")
    with pytest.raises(TypeError):
        qtx.quantize_dynamic(np.zeros((2, 3), np.int32))
