"""Encoder layers from Python (qtx.EncoderLayer, LayerCalibrator, QuantizedEncoderLayer) vs a NumPy float64 layer."""
import math

import numpy as np
import pytest

import qtx
from conftest import gate_ref, layer_norm_ref, quantize_ref, softmax_ref

erf = np.vectorize(math.erf)
ACTIVATIONS = {"gelu_erf": lambda h: 0.5 * h * (1 + erf(h / math.sqrt(2))),
               "gelu_tanh": lambda h: 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3))),
               "relu": lambda h: np.maximum(h, 0)}


def random_weights(rng, d, f, biases=True):
    w = lambda *s: (rng.normal(size=s) / math.sqrt(s[-1])).astype(np.float32)  # noqa: E731
    v = lambda n, scale=0.1: (rng.normal(size=n) * scale).astype(np.float32)  # noqa: E731
    weights = dict(wq=w(d, d), wk=w(d, d), wv=w(d, d), wo=w(d, d), fc1=w(f, d), fc2=w(d, f),
                   attention_ln_gamma=1 + v(d), attention_ln_beta=v(d), ffn_ln_gamma=1 + v(d), ffn_ln_beta=v(d))
    if biases:
        weights.update(bq=v(d), bk=v(d), bv=v(d), bo=v(d), b1=v(f), b2=v(d))
    return weights


def layer_ref(x, w, n_heads, norm="post_ln", activation="gelu_erf", eps=1e-12, gamma=0.0, zeta=1.0, causal=False,
              gate=None):
    """The encoder layer in float64, one sequence, written from its definition."""
    x = np.asarray(x, np.float64)
    T, d = x.shape
    dh = d // n_heads
    lin = lambda v, m, b: v @ w[m].astype(np.float64).T + (w[b] if b in w else 0)  # noqa: E731

    def attention(h):
        q, k, v = lin(h, "wq", "bq"), lin(h, "wk", "bk"), lin(h, "wv", "bv")
        ctx = np.empty_like(q)
        pi = gate_ref(gate.kind, n_heads, dh, h.astype(np.float32), w1=gate.w1, b1=gate.b1, w2=gate.w2,
                      b2=gate.b2, hidden=gate.hidden) if gate else None
        for head in range(n_heads):
            c = slice(head * dh, (head + 1) * dh)
            p = softmax_ref(q[:, c] @ k[:, c].T, 1 / math.sqrt(dh), gamma, zeta, causal=causal)
            ctx[:, c] = p @ v[:, c] * (pi[:, head:head + 1] if gate else 1)
        return lin(ctx, "wo", "bo")

    ffn = lambda h: lin(ACTIVATIONS[activation](lin(h, "fc1", "b1")), "fc2", "b2")  # noqa: E731
    ln1 = lambda s: layer_norm_ref(s, w["attention_ln_gamma"], w["attention_ln_beta"], eps)  # noqa: E731
    ln2 = lambda s: layer_norm_ref(s, w["ffn_ln_gamma"], w["ffn_ln_beta"], eps)  # noqa: E731
    if norm == "post_ln":
        x = ln1(x + attention(x))
        return ln2(x + ffn(x))
    x = x + attention(ln1(x))
    return x + ffn(ln2(x))


VARIANTS = [  # (norm, activation, gamma, zeta, causal, gate kind)
    ("post_ln", "gelu_erf", 0.0, 1.0, False, None),
    ("pre_ln", "relu", 0.0, 1.0, True, None),
    ("post_ln", "gelu_tanh", -0.03, 1.0, False, None),
    ("pre_ln", "gelu_erf", 0.0, 1.0, False, "linear_per_head"),
    ("post_ln", "relu", -0.02, 1.01, False, "unconditional"),
]


def make_gate(rng, kind, n_heads, dh):
    if kind is None:
        return None
    b1 = rng.normal(size=n_heads).astype(np.float32)
    if kind == "unconditional":
        return qtx.GateWeights(kind, n_heads, dh, b1=b1)
    return qtx.GateWeights(kind, n_heads, dh, w1=rng.normal(scale=0.3, size=(n_heads, dh)).astype(np.float32), b1=b1)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("T", [1, 7, 13])
def test_fp32_layer_matches_float64_reference(rng, variant, T):
    norm, act, gamma, zeta, causal, kind = variant
    d, f, heads = 32, 40, 4
    w = random_weights(rng, d, f, biases=kind != "linear_per_head")  # the no-bias form once
    gate = make_gate(rng, kind, heads, d // heads)
    layer = qtx.EncoderLayer(w, n_heads=heads, norm=norm, activation=act, ln_eps=1e-5, gamma=gamma, zeta=zeta,
                             causal=causal, gate=gate)
    assert (layer.d_model, layer.ffn_dim) == (d, f)
    x = rng.normal(size=(T, d)).astype(np.float32)
    want = layer_ref(x, w, heads, norm, act, 1e-5, gamma, zeta, causal, gate)
    y = x.copy()
    assert layer.forward(y) is y  # in place, no copy
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=2e-4)


def calibrated(rng, layer, d, batches=4, T=9):
    cal = qtx.LayerCalibrator()
    for _ in range(batches):
        layer.forward(rng.normal(size=(T, d)).astype(np.float32), calibrator=cal)
    return cal.result()


@pytest.mark.parametrize("norm", ["post_ln", "pre_ln"])
@pytest.mark.parametrize("options", [{}, {"round_residuals": False}, {"activations": "dynamic-token",
                                                                        "round_residuals": False},
                                     {"weight_bits": 7, "per_channel": False},
                                     {"round_residuals": False, "smoothing_alpha": 0.5},
                                     {"per_head_context": True}])
def test_w8a8_layer_tracks_fp32(rng, norm, options):
    d, f, heads = 32, 48, 2
    layer = qtx.EncoderLayer(random_weights(rng, d, f), n_heads=heads, norm=norm, ln_eps=1e-5)
    q = qtx.QuantizedEncoderLayer(layer, calibrated(rng, layer, d), **options)
    x = rng.normal(size=(11, d)).astype(np.float32)
    want = layer.forward(x.copy())
    got = q.forward(x.copy())
    err = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert err < 0.15, err  # random layer, tiny widths: a loose sanity bound (the C++ tests are strict)
    assert q.round_residuals == options.get("round_residuals", True)


@pytest.mark.parametrize("quantized", [False, True])
def test_packed_batch_equals_one_sequence_at_a_time(rng, quantized):
    d, f, heads = 16, 24, 2
    layer = qtx.EncoderLayer(random_weights(rng, d, f), n_heads=heads, norm="pre_ln", ln_eps=1e-5,
                             gate=make_gate(rng, "linear_per_head", heads, d // heads))
    run = qtx.QuantizedEncoderLayer(layer, calibrated(rng, layer, d)) if quantized else layer
    lengths = [3, 1, 7, 5]
    x = rng.normal(size=(sum(lengths), d)).astype(np.float32)
    one_by_one = np.concatenate([run.forward(part.copy()) for part in np.split(x, np.cumsum(lengths)[:-1])])
    batched = run.forward(x.copy(), lengths=lengths)
    np.testing.assert_array_equal(batched, one_by_one)


def test_calibrator_records_the_layer_input_like_an_observer(rng):
    d = 16
    layer = qtx.EncoderLayer(random_weights(rng, d, 24), n_heads=2, norm="post_ln")
    cal, observer = qtx.LayerCalibrator(), qtx.RunningMinMaxObserver()
    for _ in range(3):
        x = rng.normal(size=(5, d)).astype(np.float32)
        observer.observe(x)
        layer.forward(x, calibrator=cal)
    result = cal.result()
    assert result["input"] == observer.params()
    assert all(result[p] is not None for p in qtx.LayerCalibration.point_names())


def test_post_ln_uint8_stream_equals_quantizing_x(rng):
    """forward(x, x_q), x on x_q's grid, is forward(x) (which quantizes x itself) with its output on the grid."""
    d = 16
    layer = qtx.EncoderLayer(random_weights(rng, d, 24), n_heads=2, norm="post_ln")
    q = qtx.QuantizedEncoderLayer(layer, calibrated(rng, layer, d))
    p, out = q.input_params, q.output_params
    x_q = quantize_ref(rng.normal(size=(6, d)), p.scale, p.zero_point)
    x = qtx.dequantize(x_q, p)
    alone = q.forward(x.copy())
    streamed = q.forward(x, x_q)
    np.testing.assert_array_equal(x_q, quantize_ref(alone, out.scale, out.zero_point))
    np.testing.assert_array_equal(streamed, qtx.dequantize(x_q, out))


def test_quantized_layer_keeps_its_float_layer_alive(rng):
    d = 16
    layer = qtx.EncoderLayer(random_weights(rng, d, 24), n_heads=2, norm="pre_ln")
    cal = calibrated(rng, layer, d)
    x = rng.normal(size=(4, d)).astype(np.float32)
    q = qtx.QuantizedEncoderLayer(layer, cal)
    want = q.forward(x.copy())
    del layer
    np.testing.assert_array_equal(q.forward(x.copy()), want)


def test_layer_errors_name_the_python_call(rng):
    d = 16
    w = random_weights(rng, d, 24)
    with pytest.raises(ValueError, match="EncoderLayer: unknown weight 'wz'"):
        qtx.EncoderLayer({**w, "wz": w["wq"]}, n_heads=2)
    with pytest.raises(ValueError, match="EncoderLayer: weight 'fc2' is missing"):
        qtx.EncoderLayer({k: v for k, v in w.items() if k != "fc2"}, n_heads=2)
    with pytest.raises(TypeError, match="EncoderLayer: wq must be float32"):
        qtx.EncoderLayer({**w, "wq": w["wq"].astype(np.float64)}, n_heads=2)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        qtx.EncoderLayer({**w, "wq": np.asfortranarray(w["wq"])}, n_heads=2)
    with pytest.raises(ValueError, match=r"d_model \(16\) is not a multiple of n_heads \(3\)"):
        qtx.EncoderLayer(w, n_heads=3)
    with pytest.raises(ValueError, match=r"the gate is for 4 heads of width 4, the attention has 2 heads"):
        qtx.EncoderLayer(w, n_heads=2, gate=qtx.GateWeights.from_pi_init("linear_per_head", 4, 4, 0.5))
    with pytest.raises(ValueError, match="norm must be one of 'post_ln', 'pre_ln', got 'mid_ln'"):
        qtx.EncoderLayer(w, n_heads=2, norm="mid_ln")
    layer = qtx.EncoderLayer(w, n_heads=2)
    with pytest.raises(ValueError, match=r"EncoderLayer.forward: x has 5 columns, the layer's d_model is 16"):
        layer.forward(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="EncoderLayer.forward: x must be C-contiguous"):
        layer.forward(np.zeros((16, 3), np.float32).T)
    with pytest.raises(TypeError, match="EncoderLayer.forward: x must be float32"):
        layer.forward(np.zeros((3, d)))
    with pytest.raises(ValueError, match=r"EncoderLayer.forward: the sequence lengths sum to 4, x has 5 rows"):
        layer.forward(np.zeros((5, d), np.float32), lengths=[1, 3])
    with pytest.raises(ValueError, match=r"sequence length \[1\] \(0\) must be positive"):
        layer.forward(np.zeros((5, d), np.float32), lengths=[5, 0])
    with pytest.raises(ValueError, match="calibration has no range for point 'input'"):
        qtx.QuantizedEncoderLayer(layer, qtx.LayerCalibration())
    cal = calibrated(rng, layer, d)
    with pytest.raises(ValueError, match="activations must be one of"):
        qtx.QuantizedEncoderLayer(layer, cal, activations="dynamic")
    with pytest.raises(ValueError, match="weight_bits"):
        qtx.QuantizedEncoderLayer(layer, cal, weight_bits=9)
    with pytest.raises(ValueError, match="smoothing needs round_residuals = false"):
        qtx.QuantizedEncoderLayer(layer, cal, smoothing_alpha=0.5)
    with pytest.raises(ValueError, match="per_head_context needs a static context"):
        qtx.QuantizedEncoderLayer(layer, cal, activations="dynamic-token", round_residuals=False,
                                  per_head_context=True)
    q = qtx.QuantizedEncoderLayer(layer, cal, activations="dynamic-token", round_residuals=False)
    with pytest.raises(ValueError, match="QuantizedEncoderLayer.forward: x has 5 columns"):
        q.forward(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="call forward\\(x, ...\\) without x_q"):
        q.forward(np.zeros((3, d), np.float32), np.zeros((3, d), np.uint8))
    with pytest.raises(ValueError, match="unknown point 'qq'"):
        cal["qq"]
    with pytest.raises(ValueError, match="estimator must be one of"):
        qtx.LayerCalibrator().use("median")


def test_threads_calling_the_same_layers_get_serial_results(rng):
    """The GIL is released in forward: threads run layers at once, each in its own workspace."""
    import threading

    d = 16
    fp32 = qtx.EncoderLayer(random_weights(rng, d, 24), n_heads=2, norm="post_ln")
    w8a8 = qtx.QuantizedEncoderLayer(fp32, calibrated(rng, fp32, d), activations="dynamic-token",
                                     round_residuals=False)
    inputs = [rng.normal(size=(n, d)).astype(np.float32) for n in (3, 17, 9, 30, 1, 12)]
    want = [(fp32.forward(x.copy()), w8a8.forward(x.copy())) for x in inputs]
    got = [None] * len(inputs)

    def work(i):
        for _ in range(20):
            got[i] = (fp32.forward(inputs[i].copy()), w8a8.forward(inputs[i].copy()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (f, q), (gf, gq) in zip(want, got):
        np.testing.assert_array_equal(gf, f)
        np.testing.assert_array_equal(gq, q)
