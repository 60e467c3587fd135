"""qtx.models.Bert: loading (safetensors, state dicts), FP32 vs float64 references, batching, W8A8."""
import math
import os
import sys

import numpy as np
import pytest

import qtx
from qtx.models import Bert, sentence_embeddings
from conftest import layer_norm_ref, random_layer_tensors, random_tensor
from test_layers import layer_ref

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import safetensors_np  # noqa: E402  (tools/: an independent NumPy safetensors writer and reader)

MINILM = os.path.join(ROOT, "models", "minilm")


def tiny_config(**extra):
    return {**dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
                   max_position_embeddings=12, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu"), **extra}


def tiny_weights(rng, c, gate=None):
    H, I, heads = c["hidden_size"], c["intermediate_size"], c["num_attention_heads"]
    f = random_tensor(rng)
    w = {"embeddings.word_embeddings.weight": f(c["vocab_size"], H),
         "embeddings.position_embeddings.weight": f(c["max_position_embeddings"], H),
         "embeddings.token_type_embeddings.weight": f(2, H),
         "embeddings.LayerNorm.weight": 1 + f(H) * 0.1, "embeddings.LayerNorm.bias": f(H) * 0.1}
    for i in range(c["num_hidden_layers"]):
        w.update(random_layer_tensors(
            rng, f"encoder.layer.{i}.",
            (("attention.self.query", H, H), ("attention.self.key", H, H), ("attention.self.value", H, H),
             ("attention.output.dense", H, H), ("intermediate.dense", I, H), ("output.dense", H, I)),
            ("attention.output.LayerNorm", "output.LayerNorm"),
            "attention.self.gate" if gate == "linear_per_head" else None, heads))
    return w


def bert_ref(w, c, ids):
    """The whole encoder in float64 from the checkpoint's tensors, one sequence (test_layers.layer_ref per layer)."""
    T, heads, H = len(ids), c["num_attention_heads"], c["hidden_size"]
    x = (w["embeddings.word_embeddings.weight"][ids].astype(np.float64) + w["embeddings.position_embeddings.weight"][:T]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm_ref(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], c["layer_norm_eps"])
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        g = lambda n: w[p + n]  # noqa: E731
        lw = dict(wq=g("attention.self.query.weight"), bq=g("attention.self.query.bias"),
                  wk=g("attention.self.key.weight"), bk=g("attention.self.key.bias"),
                  wv=g("attention.self.value.weight"), bv=g("attention.self.value.bias"),
                  wo=g("attention.output.dense.weight"), bo=g("attention.output.dense.bias"),
                  attention_ln_gamma=g("attention.output.LayerNorm.weight"),
                  attention_ln_beta=g("attention.output.LayerNorm.bias"),
                  fc1=g("intermediate.dense.weight"), b1=g("intermediate.dense.bias"),
                  fc2=g("output.dense.weight"), b2=g("output.dense.bias"),
                  ffn_ln_gamma=g("output.LayerNorm.weight"), ffn_ln_beta=g("output.LayerNorm.bias"))
        gate = None
        if c.get("qtx_gate") == "linear_per_head":
            gate = qtx.GateWeights("linear_per_head", heads, H // heads, w1=g("attention.self.gate.weight"),
                                   b1=g("attention.self.gate.bias"))
        x = layer_ref(x, lw, heads, "post_ln", "gelu_erf", c["layer_norm_eps"], c.get("qtx_softmax_gamma", 0.0),
                      c.get("qtx_softmax_zeta", 1.0), False, gate)
    return x


@pytest.mark.parametrize("variant", [{}, {"qtx_gate": "linear_per_head"},
                                     {"qtx_softmax_gamma": -0.03, "qtx_softmax_zeta": 1.0}])
def test_fp32_from_safetensors_matches_float64_reference(rng, tmp_path, variant):
    c = tiny_config(**variant)
    w = tiny_weights(rng, c, variant.get("qtx_gate"))
    (tmp_path / "config.json").write_text(__import__("json").dumps(c))
    safetensors_np.write(str(tmp_path / "model.safetensors"), w)
    model = Bert.from_pretrained(tmp_path)
    for ids in ([2], [1, 7, 3, 49, 0], list(range(12))):
        np.testing.assert_allclose(model.forward(ids), bert_ref(w, c, ids), rtol=1e-4, atol=2e-4)


def test_mlm_head_matches_float64_reference(rng):
    c = tiny_config()
    w = {"bert." + k: v for k, v in tiny_weights(rng, c).items()}
    H, V = c["hidden_size"], c["vocab_size"]
    head = {"cls.predictions.transform.dense.weight": rng.normal(size=(H, H)).astype(np.float32) / 4,
            "cls.predictions.transform.dense.bias": rng.normal(size=H).astype(np.float32) * 0.1,
            "cls.predictions.transform.LayerNorm.weight": 1 + rng.normal(size=H).astype(np.float32) * 0.1,
            "cls.predictions.transform.LayerNorm.bias": rng.normal(size=H).astype(np.float32) * 0.1,
            "cls.predictions.bias": rng.normal(size=V).astype(np.float32) * 0.1}
    model = Bert(c, {**w, **head})
    ids = [1, 7, 3, 49, 0]
    hidden = model.forward(ids)
    g = lambda n: head[n].astype(np.float64)  # noqa: E731
    t = hidden.astype(np.float64) @ g("cls.predictions.transform.dense.weight").T + g("cls.predictions.transform.dense.bias")
    t = 0.5 * t * (1 + np.vectorize(math.erf)(t / math.sqrt(2)))
    t = layer_norm_ref(t, g("cls.predictions.transform.LayerNorm.weight"), g("cls.predictions.transform.LayerNorm.bias"),
                       c["layer_norm_eps"])
    want = t @ w["bert.embeddings.word_embeddings.weight"].astype(np.float64).T + g("cls.predictions.bias")
    np.testing.assert_allclose(model.mlm_logits(hidden), want, rtol=1e-4, atol=2e-4)
    with pytest.raises(ValueError, match=r"hidden states of shape \(5, 8\), expected \(T, 16\)"):
        model.mlm_logits(np.zeros((5, 8), np.float32))
    with pytest.raises(ValueError, match="the checkpoint has no MLM head"):
        Bert(c, w).mlm_logits(hidden)


def test_state_dict_with_prefix_and_torch_tensors(rng):
    c = tiny_config()
    w = tiny_weights(rng, c)
    ids = [3, 1, 4, 1, 5]
    want = Bert(c, w).forward(ids)
    prefixed = {"bert." + k: v for k, v in w.items()}
    np.testing.assert_array_equal(Bert(c, prefixed).forward(ids), want)
    torch = pytest.importorskip("torch", reason="PyTorch not installed (python3-torch): state-dict tensors untested")
    state = {k: torch.from_numpy(v.astype(np.float64)) for k, v in prefixed.items()}  # any float dtype
    np.testing.assert_array_equal(Bert(c, state).forward(ids), want)


def calibrated_model(rng):
    c = tiny_config()
    model = Bert(c, tiny_weights(rng, c))
    model.calibrate([list(rng.integers(0, 50, size=n)) for n in (3, 9, 12, 5, 7)])
    return model


@pytest.mark.parametrize("options", [{}, {"round_residuals": False}, {"activations": "dynamic-token",
                                                                        "round_residuals": False}])
def test_batch_equals_one_at_a_time_and_w8a8_tracks_fp32(rng, options):
    model = calibrated_model(rng)
    model.quantize(**options)
    batch = [list(rng.integers(0, 50, size=n)) for n in (4, 1, 12, 7)]
    lengths = [len(s) for s in batch]
    for w8a8 in (False, True):
        one = np.concatenate([model.forward(s, w8a8=w8a8) for s in batch])
        np.testing.assert_array_equal(model.forward(batch, w8a8=w8a8), one)
    fp32 = sentence_embeddings(model.forward(batch), lengths)
    w8a8 = sentence_embeddings(model.forward(batch, w8a8=True), lengths)
    assert np.sum(fp32 * w8a8, axis=1).min() > 0.95  # a 16-wide random model, 5 calibration sequences


def test_sentence_embeddings_pool_and_normalise(rng):
    h = rng.normal(size=(5, 3)).astype(np.float32)
    e = sentence_embeddings(h, [2, 3])
    want = np.stack([h[:2].mean(0), h[2:].mean(0)]).astype(np.float64)
    np.testing.assert_allclose(e, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-6)
    with pytest.raises(ValueError, match="do not partition the 5 rows"):
        sentence_embeddings(h, [2, 2])


def test_model_errors(rng, tmp_path):
    c = tiny_config()
    w = tiny_weights(rng, c)
    model = Bert(c, w)
    with pytest.raises(ValueError, match="token id 50 outside the vocabulary of 50"):
        model.forward([1, 50])
    with pytest.raises(ValueError, match="a sequence of 13 tokens .* the model takes 1..12"):
        model.forward(list(range(13)))
    with pytest.raises(ValueError, match="w8a8=True before quantize"):
        model.forward([1], w8a8=True)
    with pytest.raises(ValueError, match="calibrate\\(\\) first"):
        model.quantize()
    with pytest.raises(ValueError, match="no tensor 'encoder.layer.1.output.dense.bias'"):
        Bert(c, {k: v for k, v in w.items() if k != "encoder.layer.1.output.dense.bias"})
    with pytest.raises(ValueError, match="hidden_act 'swish' is not supported"):
        Bert(tiny_config(hidden_act="swish"), w)
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        Bert(dict(c, num_attention_heads=3), w)
    with pytest.raises(ValueError, match="safetensors"):
        (tmp_path / "config.json").write_text(__import__("json").dumps(c))
        (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad}")
        Bert.from_pretrained(tmp_path)


@pytest.mark.skipif(not os.path.exists(os.path.join(MINILM, "model.safetensors")),
                    reason="models/minilm missing (scripts/setup-minilm.sh)")
def test_minilm_on_text_matches_float64_reference_and_w8a8_holds():
    bert_reference = pytest.importorskip("bert_reference", reason="tools/bert_reference.py needs SciPy (python3-scipy)")
    model = Bert.from_pretrained(MINILM)
    tok = qtx.WordPiece(os.path.join(MINILM, "vocab.txt"))
    sentences = ["The state of the union is strong.", "We will quantize every transformer to eight bits!",
                 "Attention heads that want to do nothing learn outliers."]
    ids = [tok.encode(s, 128) for s in sentences]
    assert ids[0][0] == tok.cls_id and ids[0][-1] == tok.sep_id
    lengths = [len(s) for s in ids]
    weights = bert_reference.load_safetensors(os.path.join(MINILM, "model.safetensors"))
    config = __import__("json").load(open(os.path.join(MINILM, "config.json")))
    want = np.concatenate([bert_reference.forward(weights, config, np.array([s])) for s in ids])
    fp32 = sentence_embeddings(model.forward(ids), lengths)
    assert np.sum(fp32 * want, axis=1).min() > 0.99999
    model.calibrate(ids)
    model.quantize(activations="dynamic-token", round_residuals=False)
    w8a8 = sentence_embeddings(model.forward(ids, w8a8=True), lengths)
    assert np.sum(fp32 * w8a8, axis=1).min() > 0.99


def test_length_sorted_batches():
    from qtx.models import length_sorted_batches
    seqs = [[1] * n for n in (5, 2, 9, 2, 7)]
    assert length_sorted_batches(seqs, 2) == [[1, 3], [0, 4], [2]]  # stable: equal lengths keep their order
    assert length_sorted_batches(seqs, 1) == [[0], [1], [2], [3], [4]]
    with pytest.raises(ValueError, match=r"size \(0\) must be >= 1"):
        length_sorted_batches(seqs, 0)
