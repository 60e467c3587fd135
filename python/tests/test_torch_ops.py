"""qtx.torch: the torch.library ops and W8A8Linear against PyTorch / integer references (skipped,
with the reason, when torch is missing)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")
qtorch = pytest.importorskip("qtx.torch", reason="qtx.torch needs torch.library")

import qtx  # noqa: E402


def clipped_softmax_reference(x, gamma, zeta):
    p = torch.softmax(x.double(), -1)
    return torch.clamp((zeta - gamma) * p + gamma, 0, 1)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (2, 5, 33), (4, 128), (2, 3, 4, 385)])
@pytest.mark.parametrize("gamma,zeta", [(0.0, 1.0), (-0.025, 1.0), (-0.1, 1.05)])
def test_clipped_softmax_matches_its_formula(shape, gamma, zeta):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 4
    got = torch.ops.qtx.clipped_softmax(x, gamma, zeta)
    assert got.shape == x.shape and got.dtype == torch.float32
    assert torch.allclose(got.double(), clipped_softmax_reference(x, gamma, zeta), atol=2e-6, rtol=0)


def test_clipped_softmax_reads_strided_tensors_and_checks_dtype():
    x = torch.randn(8, 16).T  # not contiguous
    assert torch.allclose(torch.ops.qtx.clipped_softmax(x).double(), clipped_softmax_reference(x, 0, 1), atol=2e-6)
    with pytest.raises(TypeError, match="clipped_softmax: x must be torch.float32"):
        torch.ops.qtx.clipped_softmax(x.double())
    with pytest.raises(ValueError, match="gamma"):
        torch.ops.qtx.clipped_softmax(torch.randn(2, 4), float("nan"))


def attention_reference(q, k, v, gate, n_heads, gamma, zeta, causal, key_mask):
    T, D = q.shape
    d = D // n_heads
    out = torch.empty(T, D, dtype=torch.float64)
    for h in range(n_heads):
        cols = slice(h * d, (h + 1) * d)
        s = q[:, cols].double() @ k[:, cols].double().T / math.sqrt(d)
        if key_mask is not None:
            s = s + key_mask.double()
        if causal:
            s = s.masked_fill(torch.ones(T, k.shape[0], dtype=torch.bool).triu(1), float("-inf"))
        o = clipped_softmax_reference(s, gamma, zeta) @ v[:, cols].double()
        out[:, cols] = o * (gate[:, h:h + 1].double() if gate is not None else 1)
    return out


@pytest.mark.parametrize("T,heads,d", [(1, 1, 4), (5, 2, 8), (17, 3, 16), (40, 4, 32)])
@pytest.mark.parametrize("gated,causal,clipped", [(True, False, True), (False, True, False), (True, True, False)])
def test_gated_attention_matches_a_float64_reference(T, heads, d, gated, causal, clipped):
    g = torch.Generator().manual_seed(T * 31 + heads)
    B, D = 2, heads * d
    q, k, v = (torch.randn(B, T, D, generator=g) for _ in range(3))
    gate = torch.sigmoid(torch.randn(B, T, heads, generator=g)) if gated else None
    key_mask = torch.zeros(B, T)
    key_mask[1, T // 2 + 1:] = float("-inf")  # the second sequence is padded
    gamma = -0.03 if clipped else 0.0
    got = torch.ops.qtx.gated_attention(q, k, v, gate, heads, gamma, 1.0, causal, key_mask)
    for b in range(B):
        want = attention_reference(q[b], k[b], v[b], None if gate is None else gate[b], heads, gamma, 1.0, causal,
                                   key_mask[b])
        valid = torch.isfinite(want).all(1)
        assert torch.allclose(got[b][valid].double(), want[valid], atol=2e-5, rtol=1e-5)
    # 2-D inputs are one sequence.
    one = torch.ops.qtx.gated_attention(q[0], k[0], v[0], None if gate is None else gate[0], heads, gamma, 1.0,
                                        causal, key_mask[0])
    assert torch.equal(one, got[0])


def test_gated_attention_checks_its_arguments():
    q = torch.randn(4, 8)
    with pytest.raises(ValueError, match="must all be 2-D or all 3-D"):
        torch.ops.qtx.gated_attention(q, q[None], q, None, 2)
    with pytest.raises(ValueError, match="key_mask has 3 rows"):
        torch.ops.qtx.gated_attention(q[None], q[None], q[None], None, 2, key_mask=torch.zeros(3, 4))
    with pytest.raises(ValueError):  # qtx's own check: 8 columns are not 3 heads
        torch.ops.qtx.gated_attention(q, q, q, None, 3)


def integer_product(xq, zero_point, wq):
    """Σ_k (xq − zp)·w in int64, per row (zero_point: scalar or per row)."""
    centred = xq.astype(np.int64) - np.asarray(zero_point, dtype=np.int64).reshape(-1, 1)
    return centred @ wq.astype(np.int64).T


@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (3, 17, 5), (24, 384, 96), (2, 770, 33)])
def test_w8a8_linear_static_is_the_integer_product_scaled(M, K, N):
    rng = np.random.default_rng(M * K + N)
    x = torch.from_numpy(rng.normal(0, 2, (M, K)).astype(np.float32))
    w = torch.from_numpy(rng.integers(-128, 128, (N, K), dtype=np.int8))
    w_scale = torch.from_numpy(rng.uniform(0.001, 0.01, N).astype(np.float32))
    bias = torch.from_numpy(rng.normal(0, 1, N).astype(np.float32))
    p = qtx.asymmetric_params(float(x.min()), float(x.max()))
    got = torch.ops.qtx.w8a8_linear(x, w, w_scale, bias, p.scale, p.zero_point)
    xq = qtx.quantize(x.numpy(), p)  # the quantizer has its own tests; here the GEMM path is checked
    acc = integer_product(xq, p.zero_point, w.numpy())
    want = acc * (np.float64(p.scale) * w_scale.numpy().astype(np.float64)) + bias.numpy()
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-6, atol=2e-6 * np.abs(want).max())


@pytest.mark.parametrize("M,K,N", [(1, 8, 4), (5, 64, 16), (33, 385, 40)])
def test_w8a8_linear_dynamic_is_the_per_token_integer_product_scaled(M, K, N):
    rng = np.random.default_rng(M + K * N)
    x = rng.normal(0, 1, (M, K)).astype(np.float32)
    x[0] *= 50  # one loud token: per-token scales keep the others' resolution
    w = torch.from_numpy(rng.integers(-128, 128, (N, K), dtype=np.int8))
    w_scale = torch.from_numpy(rng.uniform(0.001, 0.01, N).astype(np.float32))
    got = torch.ops.qtx.w8a8_linear_dynamic(torch.from_numpy(x).reshape(1, M, K), w, w_scale, None)
    assert got.shape == (1, M, N)
    xq, scales, zero_points = qtx.quantize_dynamic(x, "token")
    acc = integer_product(xq, zero_points, w.numpy())
    want = acc * scales.astype(np.float64)[:, None] * w_scale.numpy().astype(np.float64)[None, :]
    np.testing.assert_allclose(got[0].numpy(), want, rtol=2e-6, atol=2e-6 * np.abs(want).max())


def test_w8a8_linear_checks_its_arguments():
    x, w, s = torch.randn(2, 8), torch.zeros(4, 8, dtype=torch.int8), torch.ones(4)
    with pytest.raises(ValueError, match="x has 7 features, the weight takes 8"):
        torch.ops.qtx.w8a8_linear(torch.randn(2, 7), w, s, None, 0.1, 0)
    with pytest.raises(TypeError, match="weight must be torch.int8"):
        torch.ops.qtx.w8a8_linear(x, w.float(), s, None, 0.1, 0)
    with pytest.raises(ValueError, match="weight_scale has 3 values for 4"):
        torch.ops.qtx.w8a8_linear_dynamic(x, w, torch.ones(3), None)
    with pytest.raises(ValueError, match="bias has 5 values for 4"):
        torch.ops.qtx.w8a8_linear_dynamic(x, w, s, torch.ones(5))
    with pytest.raises(ValueError):  # qtx's own check of the quantization parameters
        torch.ops.qtx.w8a8_linear(x, w, s, None, 0.1, 300)
    assert torch.ops.qtx.w8a8_linear_dynamic(torch.empty(0, 8), w, s, None).shape == (0, 4)


def test_swapped_model_tracks_float_and_torch_ao():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 32)).eval()
    x = torch.randn(16, 64)
    with torch.no_grad():
        want = model(x)
        ranges = {"0": (float(x.min()), float(x.max())),
                  "2": (float(model[1](model[0](x)).min()), float(model[1](model[0](x)).max()))}
        dynamic = qtorch.swap_linears(__import__("copy").deepcopy(model))
        static = qtorch.swap_linears(__import__("copy").deepcopy(model), ranges)
        assert isinstance(dynamic[0], qtorch.W8A8Linear) and dynamic[0].x_scale is None
        assert isinstance(static[2], qtorch.W8A8Linear) and static[2].x_scale is not None
        rel = lambda y: float((y - want).norm() / want.norm())  # noqa: E731
        assert rel(dynamic(x)) < 0.02 and rel(static(x)) < 0.03
        try:
            ao = torch.ao.quantization.quantize_dynamic(__import__("copy").deepcopy(model), {torch.nn.Linear},
                                                        dtype=torch.qint8)(x)
        except (RuntimeError, AttributeError) as e:  # a torch build without a quantized engine
            pytest.skip(f"torch.ao dynamic quantization unavailable: {e}")
        # Per-token activations with per-channel weights are at least as close as torch.ao's
        # per-tensor dynamic activations.
        assert rel(dynamic(x)) <= 1.5 * rel(ao)


def test_quantize_weight_is_symmetric_per_channel():
    w = torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 1.0, -0.5]])
    q, s = qtorch.quantize_weight(w)
    assert torch.equal(s, torch.tensor([1.0 / 127, 1.0, 2.0 / 127]))
    assert q[0].tolist() == [64, -127, 32] and q[1].tolist() == [0, 0, 0] and q[2].tolist() == [127, 64, -32]
    with pytest.raises(ValueError, match="NaN or infinite"):
        qtorch.quantize_weight(torch.tensor([[float("inf")]]))


def test_prepared_weights_follow_in_place_changes():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(0, 1, (3, 16)).astype(np.float32))
    w = torch.from_numpy(rng.integers(-127, 128, (8, 16), dtype=np.int8))
    s = torch.full((8,), 0.01)
    before = torch.ops.qtx.w8a8_linear_dynamic(x, w, s, None)
    w.neg_()  # same tensor, same memory, new version: the cached packing must not be reused
    after = torch.ops.qtx.w8a8_linear_dynamic(x, w, s, None)
    assert torch.allclose(after, -before, atol=1e-5)


def test_strided_weights_give_the_contiguous_result():
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.normal(0, 1, (5, 16)).astype(np.float32))
    w = torch.from_numpy(rng.integers(-128, 128, (8, 16), dtype=np.int8))
    wide = torch.zeros(8, 32, dtype=torch.int8)
    wide[:, ::2] = w
    strided = wide[:, ::2]
    assert not strided.is_contiguous()
    s = torch.full((8,), 0.01)
    for _ in range(2):  # the second call uses the prepared (cached) strided weight
        assert torch.equal(torch.ops.qtx.w8a8_linear_dynamic(x, strided, s, None),
                           torch.ops.qtx.w8a8_linear_dynamic(x, w, s, None))
        assert torch.equal(torch.ops.qtx.w8a8_linear(x, strided, s, None, 0.05, 128),
                           torch.ops.qtx.w8a8_linear(x, w, s, None, 0.05, 128))
