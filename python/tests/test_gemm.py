"""GEMM against NumPy: exact int32 accumulation and integer epilogues, float paths within tolerance."""
import numpy as np
import pytest

import qtx
from qtx import epilogue as ep
from conftest import F32_EPS, quantize_ref

SHAPES = [(1, 1, 1), (3, 7, 5), (4, 64, 16), (17, 33, 31), (2, 257, 65), (33, 130, 49)]


def acc_ref(a, b, za=0, zb=0):
    return (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)


def test_amx_switch_gives_the_same_bits(rng):
    """AMX tiles (where the CPU has them) and vpdpbusd: the same exact sums; off elsewhere."""
    before = qtx.amx_enabled()
    a = rng.integers(0, 256, (40, 200), dtype=np.uint8)
    b = rng.integers(-128, 128, (200, 70), dtype=np.int8)
    packed = qtx.pack_b(b, 5)
    assert qtx.set_amx_enabled(False) is False
    results = [qtx.gemm(a, packed, a_zero_point=9)]
    qtx.set_amx_enabled(True)  # True only where the CPU and OS have AMX-INT8 (avx512_vnni build)
    results.append(qtx.gemm(a, packed, a_zero_point=9))
    qtx.set_amx_enabled(before)
    assert qtx.amx_enabled() == before
    for c in results:
        np.testing.assert_array_equal(c, acc_ref(a, b, 9, 5))


def requant_ref(v, multipliers, zp, dtype):
    info = np.iinfo(dtype)
    prod = np.asarray(v).astype(np.float32) * np.asarray(multipliers, np.float32)
    return np.clip(np.rint(prod).astype(np.float64) + zp, info.min, info.max).astype(dtype)


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("b_dtype", [np.int8, np.uint8])
def test_int32_accumulator_exact(rng, m, k, n, b_dtype):
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    info = np.iinfo(b_dtype)
    b = rng.integers(info.min, info.max + 1, (k, n), dtype=b_dtype)
    zb = 3 if b_dtype == np.int8 else 131
    c = qtx.gemm(a, qtx.pack_b(b, zb), a_zero_point=17)
    assert c.dtype == np.int32
    np.testing.assert_array_equal(c, acc_ref(a, b, 17, zb))
    # Unpacked b: packed for the call.
    np.testing.assert_array_equal(qtx.gemm(a, b, a_zero_point=17, b_zero_point=zb), c)


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("relu", [False, True])
def test_bias_requantize_exact(rng, m, k, n, dtype, per_channel, relu):
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    bias = rng.integers(-5000, 5000, n, dtype=np.int32)
    mult = (rng.uniform(0.5, 2.0, n) if per_channel else np.array([1.0])).astype(np.float32) / (40.0 * k)
    zp = 128 if dtype == np.uint8 else 0
    stages = [ep.bias(bias)] + ([ep.relu()] if relu else []) + [ep.requantize(mult, zp)]
    out = np.empty((m, n), dtype)
    assert qtx.gemm(a, qtx.pack_b(b), out, epilogue=stages, a_zero_point=128) is out
    v = acc_ref(a, b, 128) + bias
    if relu:
        v = np.maximum(v, 0)
    np.testing.assert_array_equal(out, requant_ref(v, mult, zp, dtype))


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("act", [None, "relu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("residual", [False, True])
def test_dequantize_activation_residual(rng, m, k, n, act, residual):
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    bias = rng.integers(-300, 300, n, dtype=np.int32)
    scales = rng.uniform(0.5, 1.5, n).astype(np.float32) / (30.0 * k)
    r = rng.normal(size=(m, n)).astype(np.float32)
    stages = [ep.bias(bias), ep.dequantize(scales)]
    v = (acc_ref(a, b, 120) + bias).astype(np.float32) * scales
    v = v.astype(np.float64)
    if act == "relu":
        stages.append(ep.relu())
        v = np.maximum(v, 0)
    elif act is not None:
        stages.append(ep.gelu("tanh" if act == "gelu_tanh" else "none"))
        if act == "gelu":
            from math import erf, sqrt
            v = 0.5 * v * (1 + np.vectorize(erf)(v / sqrt(2)))
        else:
            v = 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3)))
    if residual:
        stages.append(ep.residual_add(r))
        v = v + r
    y = qtx.gemm(a, qtx.pack_b(b), epilogue=stages, a_zero_point=120)
    assert y.dtype == np.float32
    # GELU runs the row kernels' vector erf / sigmoid: a few ulp of the output (test_epilogue.cpp).
    np.testing.assert_allclose(y, v, rtol=4e-6, atol=4e-6)
    p = qtx.QuantParams(0.02, 100)
    q = qtx.gemm(a, qtx.pack_b(b), epilogue=stages + [ep.quantize(p)], a_zero_point=120)
    assert q.dtype == np.uint8
    assert np.max(np.abs(q.astype(int) - quantize_ref(v.astype(np.float32), 0.02, 100).astype(int))) <= 1


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_float_gemm(rng, m, k, n):
    a = rng.normal(size=(m, k)).astype(np.float32)
    b = rng.normal(size=(k, n)).astype(np.float32)
    bias = rng.normal(size=n).astype(np.float32)
    r = rng.normal(size=(m, n)).astype(np.float32)
    want = np.maximum((a.astype(np.float64) @ b + bias) * 0.5, 0) + r
    got = qtx.gemm(a, qtx.pack_b(b), epilogue=[ep.bias(bias), ep.scale(0.5), ep.relu(), ep.residual_add(r)])
    bound = 2 * k * F32_EPS * (np.abs(a) @ np.abs(b) + np.abs(bias)) + 4 * F32_EPS * np.abs(want)
    assert np.all(np.abs(got - want) <= bound + 1e-30)


def test_strided_inputs_and_outputs_are_used_in_place(rng):
    w = rng.integers(-128, 128, (24, 40), dtype=np.int8)  # PyTorch layout (out, in)
    packed = qtx.pack_b(w.T)  # a transposed view, no copy
    assert packed.shape == (40, 24)
    big = rng.integers(0, 256, (9, 80), dtype=np.uint8)
    a = big[:, ::2]
    out = np.zeros((9, 48), np.int32)
    qtx.gemm(a, packed, out[:, 10:34])
    np.testing.assert_array_equal(out[:, 10:34], acc_ref(a, w.T))
    assert not out[:, :10].any() and not out[:, 34:].any()
    row = qtx.gemm(big[0, :40], packed)  # 1-D a: one row, 1-D result
    assert row.shape == (24,)
    np.testing.assert_array_equal(row, acc_ref(big[:1, :40], w.T)[0])


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("row_zero_points", [False, True])
@pytest.mark.parametrize("per_row_scales", [False, True])
@pytest.mark.parametrize("float_bias", [False, True])
def test_per_row_stages(rng, m, k, n, row_zero_points, per_row_scales, float_bias):
    """[subtract_row_zero_point] (dequantize | dequantize_rows) [bias]: the per-token linear in one pass."""
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    zp = rng.integers(0, 256, m).astype(np.int32)
    column_sums = b.sum(axis=0, dtype=np.int32)
    row_scales = rng.uniform(0.01, 0.1, m).astype(np.float32)
    scales = rng.uniform(0.5, 2.0, n).astype(np.float32) / k
    bias = rng.normal(size=n).astype(np.float32)
    stages = [ep.subtract_row_zero_point(zp, column_sums)] if row_zero_points else []
    stages.append(ep.dequantize_rows(row_scales, scales) if per_row_scales else ep.dequantize(scales))
    if float_bias:
        stages.append(ep.bias(bias))
    out = np.empty((m, n), np.float32)
    assert qtx.gemm(a, qtx.pack_b(b), out, epilogue=stages) is out
    acc = acc_ref(a, b) - (zp[:, None].astype(np.int64) * column_sums if row_zero_points else 0)
    # The epilogue's float arithmetic, spelled out: float(acc) * s_row * s_col (+ bias), in float32.
    want = acc.astype(np.float32) * (row_scales[:, None] if per_row_scales else np.float32(1)) * scales
    if float_bias:
        want = want + bias
    np.testing.assert_allclose(out, want, rtol=4 * F32_EPS, atol=1e-6)


def test_gemm_errors(rng):
    a = rng.integers(0, 256, (4, 8), dtype=np.uint8)
    packed = qtx.pack_b(rng.integers(-128, 128, (8, 5), dtype=np.int8))
    with pytest.raises(TypeError, match="gemm: a"):
        qtx.gemm(a.astype(np.float64), packed)
    with pytest.raises(ValueError, match=r"gemm: a.cols \(7\) != b.rows \(8\)"):
        qtx.gemm(a[:, :7], packed)
    with pytest.raises(ValueError, match="gemm: bias values has 4 elements, expected 5"):
        qtx.gemm(a, packed, epilogue=[ep.bias(np.zeros(4, np.int32))])
    with pytest.raises(TypeError, match="bias values"):
        qtx.gemm(a, packed, epilogue=[ep.bias(np.zeros(5, np.float32))])
    with pytest.raises(ValueError, match="not supported at this position"):
        qtx.gemm(a, packed, epilogue=[ep.requantize(0.1), ep.bias(np.zeros(5, np.int32))])
    zp, sums = np.zeros(4, np.int32), np.zeros(5, np.int32)
    with pytest.raises(ValueError, match=r"stage 1 \(relu\) is not supported at this position"):
        qtx.gemm(a, packed, epilogue=[ep.subtract_row_zero_point(zp, sums), ep.relu()])
    with pytest.raises(ValueError, match=r"stage 2 \(relu\) is not supported"):
        qtx.gemm(a, packed, epilogue=[ep.dequantize(0.1), ep.bias(np.zeros(5, np.float32)), ep.relu()])
    with pytest.raises(ValueError, match="an int32 bias before dequantize and the per-row stages"):
        qtx.gemm(a, packed, epilogue=[ep.bias(np.zeros(5, np.int32)), ep.dequantize_rows(np.ones(4, np.float32), 1.0)])
    with pytest.raises(ValueError, match="subtract_row_zero_point zero_points has 3 elements"):
        qtx.gemm(a, packed, epilogue=[ep.subtract_row_zero_point(zp[:3], sums), ep.dequantize(1.0)])
    with pytest.raises(ValueError, match="dequantize_rows row_scales"):
        qtx.gemm(a, packed, epilogue=[ep.dequantize_rows(np.full(4, -1, np.float32), 1.0)])
    with pytest.raises(ValueError, match="stores int32"):
        qtx.gemm(a, packed, np.empty((4, 5), np.uint8))
    with pytest.raises(ValueError, match="c is 4x6"):
        qtx.gemm(a, packed, np.empty((4, 6), np.int32))
    with pytest.raises(ValueError, match="a_zero_point"):
        qtx.gemm(a, packed, a_zero_point=256)
    with pytest.raises(ValueError, match="requantize multipliers"):
        qtx.gemm(a, packed, epilogue=[ep.requantize(-1.0)])
    with pytest.raises(ValueError, match="stride"):
        qtx.gemm(a[:, ::-1], packed)
    with pytest.raises(TypeError):
        qtx.gemm("not an array", packed)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty((4, 5), np.int32)
        ro.flags.writeable = False
        qtx.gemm(a, packed, ro)
