"""Attention gates, fused attention (float and W8A8), observers and outlier statistics vs NumPy."""
import numpy as np
import pytest

import qtx
from conftest import gate_ref, quantize_ref, softmax_ref


@pytest.mark.parametrize("kind", ["linear_per_head", "mlp_per_head", "all_heads_linear", "unconditional"])
def test_attention_gate_kinds(rng, kind):
    T, H, dh, hidden = 7, 3, 8, 2
    x = rng.normal(size=(T, H * dh)).astype(np.float32)
    f = lambda *s: rng.normal(scale=0.3, size=s).astype(np.float32)  # noqa: E731
    arrays = {
        "linear_per_head": dict(w1=f(H, dh), b1=f(H)),
        "mlp_per_head": dict(w1=f(H, hidden, dh), b1=f(H, hidden), w2=f(H, hidden), b2=f(H)),
        "all_heads_linear": dict(w1=f(H, H * dh), b1=f(H)),
        "unconditional": dict(b1=f(H)),
    }[kind]
    g = qtx.GateWeights(kind, H, dh, hidden=hidden if kind == "mlp_per_head" else 0, **arrays)
    out = np.empty((T, H), np.float32)
    assert qtx.attention_gate(g, x, out) is out
    np.testing.assert_allclose(out, gate_ref(kind, H, dh, x, hidden=hidden, **arrays), rtol=1e-5, atol=1e-6)
    init = qtx.GateWeights.from_pi_init(kind, H, dh, 0.25, hidden=hidden if kind == "mlp_per_head" else 0)
    np.testing.assert_allclose(qtx.attention_gate(init, x), 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="attention_gate: x has 5 columns"):
        qtx.attention_gate(g, x[:, :5])


def attention_ref(q, k, v, H, scale, gamma=0.0, zeta=1.0, causal=False, key_mask=None, gate=None):
    Tq, D = q.shape
    d = D // H
    out = np.zeros((Tq, D))
    for h in range(H):
        cols = slice(h * d, (h + 1) * d)
        s = q[:, cols].astype(np.float64) @ k[:, cols].T.astype(np.float64)
        p = softmax_ref(s, scale, gamma, zeta, mask=key_mask, causal=causal)
        o = p @ v[:, cols].astype(np.float64)
        out[:, cols] = o * (gate[:, h : h + 1] if gate is not None else 1)
    return out


@pytest.mark.parametrize("Tq,Tk", [(1, 1), (3, 17), (33, 33), (70, 65)])
@pytest.mark.parametrize("variant", ["vanilla", "clipped", "gated", "causal"])
def test_attention_float(rng, Tq, Tk, variant):
    H, d = 2, 16
    q, k, v = (rng.normal(size=(t, H * d)).astype(np.float32) for t in (Tq, Tk, Tk))
    mask = np.zeros(Tk, np.float32)
    mask[Tk // 2 + 1 :] = -np.inf
    gate = rng.uniform(0.1, 0.9, (Tq, H)).astype(np.float32) if variant == "gated" else None
    gamma = -0.03 if variant == "clipped" else 0.0
    causal = variant == "causal"
    out = np.empty((Tq, H * d), np.float32)
    got = qtx.attention(q, k, v, out, n_heads=H, gamma=gamma, key_mask=mask, gate=gate, causal=causal)
    assert got is out
    want = attention_ref(q, k, v, H, 1 / np.sqrt(d), gamma, 1.0, causal, mask[None, :], gate)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=2e-5)  # test_attention.cpp's tolerance


def test_attention_w8a8(rng):
    Tq, Tk, H, d = 9, 21, 2, 16
    qp, kp, vp = qtx.QuantParams(0.03, 120), qtx.QuantParams(0.025, 131), qtx.QuantParams(0.02, 128)
    q, k, v = (rng.integers(0, 256, (t, H * d), dtype=np.uint8) for t in (Tq, Tk, Tk))
    got = qtx.attention(q, k, v, n_heads=H, q_params=qp, k_params=kp, v_params=vp, gamma=-0.02)
    # The integer oracle (ref/attention_int8.hpp): int32 scores, uint8 probabilities, int32 P.V.
    want = np.zeros((Tq, H * d))
    scale = np.float32(np.float32(1 / np.sqrt(d)) * np.float32(qp.scale)) * np.float32(kp.scale)
    for h in range(H):
        cols = slice(h * d, (h + 1) * d)
        s = (q[:, cols].astype(np.int64) - qp.zero_point) @ (k[:, cols].astype(np.int64) - kp.zero_point).T
        p = quantize_ref(softmax_ref(s.astype(np.float64), float(scale), -0.02).astype(np.float32), 1 / 255, 0)
        a = p.astype(np.int64) @ (v[:, cols].astype(np.int64) - vp.zero_point)
        want[:, cols] = a.astype(np.float32) * np.float32(np.float32(1 / 255) * np.float32(vp.scale))
    # A probability level on a rounding tie may differ by one: at most one level's worth of v.
    level = (1 / 255) * vp.scale * 128
    assert np.max(np.abs(got - want)) <= 2 * level
    assert np.mean(np.abs(got - want) > 1e-6) < 0.05
    op = qtx.QuantParams(0.01, 128)
    out = np.empty((Tq, H * d), np.uint8)
    assert qtx.attention(q, k, v, out, n_heads=H, q_params=qp, k_params=kp, v_params=vp, out_params=op,
                         gamma=-0.02) is out
    assert np.max(np.abs(out.astype(int) - quantize_ref(want.astype(np.float32), 0.01, 128).astype(int))) <= 3
    with pytest.raises(ValueError, match="need q_params"):
        qtx.attention(q, k, v, n_heads=H)
    with pytest.raises(ValueError, match="not a multiple of n_heads"):
        qtx.attention(q, k, v, n_heads=5, q_params=qp, k_params=kp, v_params=vp)


def test_observers(rng):
    x = rng.normal(size=(50, 40)).astype(np.float32)
    x[0, 0] = np.nan
    finite = x[np.isfinite(x)]
    mm = qtx.MinMaxObserver()
    assert mm.empty
    with pytest.raises(ValueError, match="nothing observed"):
        mm.range()
    mm.observe(x)
    assert mm.range() == (finite.min(), finite.max())
    assert mm.params() == qtx.asymmetric_params(finite.min(), finite.max())
    assert mm.params(np.int8) == qtx.symmetric_params(max(-finite.min(), finite.max()))
    run = qtx.RunningMinMaxObserver(0.9)
    run.observe(x[:25])
    run.observe(x[25:])
    lo = 0.9 * np.nanmin(x[:25]).astype(np.float64) + 0.1 * np.nanmin(x[25:])
    assert run.range()[0] == pytest.approx(lo, rel=1e-6) and run.batches == 2
    pc = qtx.PercentileObserver(99.0)
    pc.observe(x[:, ::3])  # strided, no copy
    sub = x[:, ::3][np.isfinite(x[:, ::3])]
    assert pc.range() == pytest.approx((np.percentile(sub, 1.0), np.percentile(sub, 99.0)), rel=1e-5)
    mse = qtx.MseObserver(np.uint8, candidates=20)
    mse.observe(x)
    lo, hi = mse.range()
    assert finite.min() <= lo <= 0 <= hi <= finite.max()
    assert mse.mean_squared_error(lo, hi) <= mse.mean_squared_error(finite.min(), finite.max())


def test_outlier_stats(rng):
    x = rng.normal(size=(16, 24)).astype(np.float32)
    x[3, 5] = 40.0
    xd = x.astype(np.float64)
    mu, var = xd.mean(), xd.var(ddof=1)
    kurt = ((xd - mu) ** 4).mean() / (var**2 + 1e-6)
    assert qtx.inf_norm(x) == 40.0
    assert qtx.kurtosis(x) == pytest.approx(kurt, rel=1e-10)
    s = qtx.OutlierStats()
    s.add_sequence(x)
    s.add_sequence(x[:, :12])
    assert s.count == 2 and s.max_inf_norm == 40.0
    assert s.mean_inf_norm == pytest.approx((40.0 + np.abs(x[:, :12]).max()) / 2)
    with pytest.raises(ValueError, match="kurtosis: x is 1x1"):
        qtx.kurtosis(np.ones(1, np.float32))
