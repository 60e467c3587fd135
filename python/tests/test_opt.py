"""qtx.models.Opt: loading (safetensors, state dicts with their prefixes), FP32 logits vs a float64
reference written from the definition, packed batches, W8A8; the real opt-gated checkpoint."""
import json
import os
import sys

import numpy as np
import pytest

import qtx
from qtx.models import Opt
from conftest import layer_norm_ref, random_layer_tensors, random_tensor
from test_layers import layer_ref

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import safetensors_np  # noqa: E402

OPT_GATED = os.path.join(ROOT, "checkpoints", "opt-gated")


def tiny_config(**extra):
    return {**dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, ffn_dim=24,
                   max_position_embeddings=10, do_layer_norm_before=True, activation_function="relu"), **extra}


def tiny_weights(rng, c, gate=None, prefix="model.decoder."):
    H, F, heads = c["hidden_size"], c["ffn_dim"], c["num_attention_heads"]
    f = random_tensor(rng)
    w = {"embed_tokens.weight": f(c["vocab_size"], H), "embed_positions.weight": f(c["max_position_embeddings"] + 2, H),
         "final_layer_norm.weight": 1 + f(H) * 0.1, "final_layer_norm.bias": f(H) * 0.1}
    for i in range(c["num_hidden_layers"]):
        w.update(random_layer_tensors(
            rng, f"layers.{i}.",
            (("self_attn.q_proj", H, H), ("self_attn.k_proj", H, H), ("self_attn.v_proj", H, H),
             ("self_attn.out_proj", H, H), ("fc1", F, H), ("fc2", H, F)),
            ("self_attn_layer_norm", "final_layer_norm"), "self_attn.gate" if gate == "linear_per_head" else None,
            heads))
    return {prefix + k: v for k, v in w.items()}


def opt_ref(w, c, ids, prefix="model.decoder."):
    """Logits of one sequence in float64 from the checkpoint's tensors (test_layers.layer_ref per layer)."""
    g = lambda n: np.asarray(w[prefix + n], np.float64)  # noqa: E731
    heads, H, T = c["num_attention_heads"], c["hidden_size"], len(ids)
    x = g("embed_tokens.weight")[ids] + g("embed_positions.weight")[2:2 + T]
    for i in range(c["num_hidden_layers"]):
        p = f"layers.{i}."
        lw = dict(wq=g(p + "self_attn.q_proj.weight"), bq=g(p + "self_attn.q_proj.bias"),
                  wk=g(p + "self_attn.k_proj.weight"), bk=g(p + "self_attn.k_proj.bias"),
                  wv=g(p + "self_attn.v_proj.weight"), bv=g(p + "self_attn.v_proj.bias"),
                  wo=g(p + "self_attn.out_proj.weight"), bo=g(p + "self_attn.out_proj.bias"),
                  attention_ln_gamma=g(p + "self_attn_layer_norm.weight"),
                  attention_ln_beta=g(p + "self_attn_layer_norm.bias"),
                  fc1=g(p + "fc1.weight"), b1=g(p + "fc1.bias"), fc2=g(p + "fc2.weight"), b2=g(p + "fc2.bias"),
                  ffn_ln_gamma=g(p + "final_layer_norm.weight"), ffn_ln_beta=g(p + "final_layer_norm.bias"))
        gate = None
        if c.get("qtx_gate") == "linear_per_head":
            gate = qtx.GateWeights("linear_per_head", heads, H // heads,
                                   w1=np.asarray(w[prefix + p + "self_attn.gate.weight"], np.float32),
                                   b1=np.asarray(w[prefix + p + "self_attn.gate.bias"], np.float32))
        x = layer_ref(x, lw, heads, "pre_ln", "relu", 1e-5, c.get("qtx_softmax_gamma", 0.0),
                      c.get("qtx_softmax_zeta", 1.0), True, gate)
    x = layer_norm_ref(x, g("final_layer_norm.weight"), g("final_layer_norm.bias"), 1e-5)
    return x @ g("embed_tokens.weight").T


@pytest.mark.parametrize("variant", [{}, {"qtx_gate": "linear_per_head"},
                                     {"qtx_softmax_gamma": -0.03, "qtx_softmax_zeta": 1.0}])
def test_fp32_logits_match_float64_reference(rng, tmp_path, variant):
    c = tiny_config(**variant)
    w = tiny_weights(rng, c, variant.get("qtx_gate"))
    (tmp_path / "config.json").write_text(json.dumps(c))
    safetensors_np.write(str(tmp_path / "model.safetensors"), w)
    model = Opt.from_pretrained(tmp_path)
    for ids in ([2], [1, 7, 3, 39, 0], list(range(10))):
        np.testing.assert_allclose(model.logits(ids), opt_ref(w, c, ids), rtol=1e-4, atol=2e-4)


def test_state_dict_prefixes_and_torch_tensors(rng):
    c = tiny_config()
    w = tiny_weights(rng, c)
    ids = [3, 1, 4, 1, 5]
    want = Opt(c, w).logits(ids)
    for prefix in ("decoder.", ""):  # OPTModel's names, and bare ones
        bare = {k[len("model.decoder."):]: v for k, v in w.items()}
        np.testing.assert_array_equal(Opt(c, {prefix + k: v for k, v in bare.items()}).logits(ids), want)
    torch = pytest.importorskip("torch", reason="PyTorch not installed (python3-torch): state-dict tensors untested")
    state = {k: torch.from_numpy(v.astype(np.float64)) for k, v in w.items()}
    np.testing.assert_array_equal(Opt(c, state).logits(ids), want)


@pytest.mark.parametrize("options", [{}, {"round_residuals": False, "activations": "dynamic-token"},
                                     {"per_head_context": True}])
def test_batch_equals_one_at_a_time_and_w8a8_tracks_fp32(rng, options):
    c = tiny_config(qtx_gate="linear_per_head")
    model = Opt(c, tiny_weights(rng, c, "linear_per_head"))
    model.calibrate([list(rng.integers(0, 40, size=n)) for n in (3, 9, 10, 5, 7)])
    model.quantize(**options)
    batch = [list(rng.integers(0, 40, size=n)) for n in (4, 1, 10, 7)]
    for w8a8 in (False, True):
        one = np.concatenate([model.logits(s, w8a8=w8a8) for s in batch])
        np.testing.assert_array_equal(model.logits(batch, w8a8=w8a8), one)
    fp32, w8a8 = model.forward(batch), model.forward(batch, w8a8=True)
    err = np.linalg.norm(w8a8 - fp32) / np.linalg.norm(fp32)
    assert 0 < err < 0.2, err  # a 16-wide random model, 5 calibration sequences: a loose sanity bound


def test_embedding_grid_is_the_calibrated_range(rng):
    c = tiny_config()
    model = Opt(c, tiny_weights(rng, c))
    seqs = [list(rng.integers(0, 40, size=n)) for n in (3, 9, 6)]
    model.calibrate(seqs)
    model.quantize()
    observer = qtx.RunningMinMaxObserver()
    for s in seqs:
        observer.observe(model.embed(s)[0])
    assert model.embedding_params.scale == observer.params().scale
    assert model.embedding_params.zero_point == observer.params().zero_point


def test_opt_errors(rng):
    c = tiny_config()
    w = tiny_weights(rng, c)
    model = Opt(c, w)
    with pytest.raises(ValueError, match="Opt.forward: token id 40 outside the vocabulary of 40"):
        model.logits([1, 40])
    with pytest.raises(ValueError, match="Opt.forward: a sequence of 11 tokens .* takes 1..10"):
        model.forward(list(range(11)))
    with pytest.raises(ValueError, match="Opt.forward: w8a8=True before quantize"):
        model.forward([1], w8a8=True)
    with pytest.raises(ValueError, match="Opt.quantize: calibrate\\(\\) first"):
        model.quantize()
    with pytest.raises(ValueError, match="do_layer_norm_before = false"):
        Opt(dict(c, do_layer_norm_before=False), w)
    with pytest.raises(ValueError, match="Opt: the checkpoint has no tensor 'model.decoder.layers.1.fc2.bias'"):
        Opt(c, {k: v for k, v in w.items() if k != "model.decoder.layers.1.fc2.bias"})
    with pytest.raises(ValueError, match="activation_function 'silu' is not supported"):
        Opt(dict(c, activation_function="silu"), w)
    with pytest.raises(ValueError, match="Opt: config has no num_attention_heads"):
        Opt({k: v for k, v in c.items() if k != "num_attention_heads"}, w)
    short = dict(w)
    short["model.decoder.embed_positions.weight"] = w["model.decoder.embed_positions.weight"][:10]
    with pytest.raises(ValueError, match="10 position embeddings, max_position_embeddings \\+ 2 is 12"):
        Opt(c, short)


@pytest.mark.skipif(not os.path.exists(os.path.join(OPT_GATED, "model.safetensors")), reason="checkpoints/opt-gated missing")
def test_opt_gated_checkpoint_on_text():
    model = Opt.from_pretrained(OPT_GATED)
    config = json.load(open(os.path.join(OPT_GATED, "config.json")))
    weights = qtx.load_safetensors(os.path.join(OPT_GATED, "model.safetensors"))
    vocab = os.path.join(ROOT, "checkpoints", "vocab.txt")
    tok = qtx.WordPiece(vocab)
    lines = [line.rstrip("\n") for line in open(vocab, encoding="utf-8")]
    assert tok.id_of("[MASK]") == lines.index("[MASK]") and tok.id_of(lines[100]) == 100
    assert tok.id_of("no such piece") == -1
    ids = [tok.encode(s, 128) for s in ("The state of the union is strong.", "We will cut taxes for families.")]
    for s in ids:
        np.testing.assert_allclose(model.logits(s), opt_ref(weights, config, s), rtol=1e-3, atol=1e-3)
    model.calibrate(ids)
    model.quantize()

    def nll(logits, s):
        z = logits[:-1].astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        return float(np.sum(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(s) - 1), s[1:]]))

    fp32 = sum(nll(model.logits(s), s) for s in ids)
    w8a8 = sum(nll(model.logits(s, w8a8=True), s) for s in ids)
    assert abs(w8a8 - fp32) < 0.05 * fp32  # calibrated on these two sentences
