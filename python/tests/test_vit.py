"""qtx.models.ViT: FP32 logits vs a float64 reference written from the definition (patches, [CLS],
positions, pre-LN layers, final LN, classifier), batches, W8A8; the real vit-gated checkpoint."""
import json
import os
import sys

import numpy as np
import pytest

import qtx
from qtx.models import ViT
from conftest import layer_norm_ref, random_layer_tensors, random_tensor
from test_layers import layer_ref

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import safetensors_np  # noqa: E402

VIT_GATED = os.path.join(ROOT, "checkpoints", "vit-gated")


def tiny_config(**extra):
    return {**dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24, image_size=8,
                   patch_size=4, num_channels=2, num_labels=3, hidden_act="gelu", layer_norm_eps=1e-6,
                   qtx_image_mean=[0.3, 0.5], qtx_image_std=[0.25, 0.4]), **extra}


def tiny_weights(rng, c, gate=None, patch_ln=False):
    H, I, C, p = c["hidden_size"], c["intermediate_size"], c["num_channels"], c["patch_size"]
    T = (c["image_size"] // p) ** 2 + 1
    f = random_tensor(rng)
    w = {"vit.embeddings.patch_embeddings.projection.weight": f(H, C, p, p),
         "vit.embeddings.patch_embeddings.projection.bias": f(H) * 0.1,
         "vit.embeddings.cls_token": f(1, 1, H), "vit.embeddings.position_embeddings": f(1, T, H),
         "vit.layernorm.weight": 1 + f(H) * 0.1, "vit.layernorm.bias": f(H) * 0.1,
         "classifier.weight": f(c["num_labels"], H), "classifier.bias": f(c["num_labels"])}
    if patch_ln:
        w["vit.embeddings.patch_layernorm.weight"], w["vit.embeddings.patch_layernorm.bias"] = 1 + f(H) * 0.1, f(H) * 0.1
    for i in range(c["num_hidden_layers"]):
        w.update(random_layer_tensors(
            rng, f"vit.encoder.layer.{i}.",
            (("attention.attention.query", H, H), ("attention.attention.key", H, H),
             ("attention.attention.value", H, H), ("attention.output.dense", H, H), ("intermediate.dense", I, H),
             ("output.dense", H, I)),
            ("layernorm_before", "layernorm_after"), "attention.attention.gate" if gate == "linear_per_head" else None,
            c["num_attention_heads"]))
    return w


def vit_ref(w, c, image):
    """Logits of one image (C, S, S) uint8 in float64, from the definition."""
    g = lambda n: np.asarray(w[n], np.float64)  # noqa: E731
    S, p, H, heads = c["image_size"], c["patch_size"], c["hidden_size"], c["num_attention_heads"]
    eps = c["layer_norm_eps"]
    mean, std = np.asarray(c["qtx_image_mean"]), np.asarray(c["qtx_image_std"])
    pixels = (image.astype(np.float64) / 255 - mean[:, None, None]) / std[:, None, None]
    rows = [pixels[:, gy * p:(gy + 1) * p, gx * p:(gx + 1) * p].reshape(-1)
            for gy in range(S // p) for gx in range(S // p)]
    kernel = g("vit.embeddings.patch_embeddings.projection.weight").reshape(H, -1)
    emb = np.stack(rows) @ kernel.T + g("vit.embeddings.patch_embeddings.projection.bias")
    if "vit.embeddings.patch_layernorm.weight" in w:
        emb = layer_norm_ref(emb, g("vit.embeddings.patch_layernorm.weight"), g("vit.embeddings.patch_layernorm.bias"), eps)
    x = np.concatenate([g("vit.embeddings.cls_token").reshape(1, H), emb]) + g("vit.embeddings.position_embeddings")[0]
    for i in range(c["num_hidden_layers"]):
        q = lambda n: g(f"vit.encoder.layer.{i}." + n)  # noqa: E731
        lw = dict(wq=q("attention.attention.query.weight"), bq=q("attention.attention.query.bias"),
                  wk=q("attention.attention.key.weight"), bk=q("attention.attention.key.bias"),
                  wv=q("attention.attention.value.weight"), bv=q("attention.attention.value.bias"),
                  wo=q("attention.output.dense.weight"), bo=q("attention.output.dense.bias"),
                  attention_ln_gamma=q("layernorm_before.weight"), attention_ln_beta=q("layernorm_before.bias"),
                  fc1=q("intermediate.dense.weight"), b1=q("intermediate.dense.bias"),
                  fc2=q("output.dense.weight"), b2=q("output.dense.bias"),
                  ffn_ln_gamma=q("layernorm_after.weight"), ffn_ln_beta=q("layernorm_after.bias"))
        gate = None
        if c.get("qtx_gate") == "linear_per_head":
            gate = qtx.GateWeights("linear_per_head", heads, H // heads,
                                   w1=np.asarray(w[f"vit.encoder.layer.{i}.attention.attention.gate.weight"], np.float32),
                                   b1=np.asarray(w[f"vit.encoder.layer.{i}.attention.attention.gate.bias"], np.float32))
        x = layer_ref(x, lw, heads, "pre_ln", "gelu_erf", eps, c.get("qtx_softmax_gamma", 0.0),
                      c.get("qtx_softmax_zeta", 1.0), False, gate)
    cls = layer_norm_ref(x[:1], g("vit.layernorm.weight"), g("vit.layernorm.bias"), eps)
    return (cls @ g("classifier.weight").T + g("classifier.bias"))[0]


def images(rng, n, c):
    return rng.integers(0, 256, size=(n, c["num_channels"], c["image_size"], c["image_size"]), dtype=np.uint8)


@pytest.mark.parametrize("variant,patch_ln", [({}, False), ({"qtx_gate": "linear_per_head"}, False),
                                              ({"qtx_softmax_gamma": -0.03, "qtx_softmax_zeta": 1.0}, True)])
def test_fp32_logits_match_float64_reference(rng, tmp_path, variant, patch_ln):
    c = tiny_config(**variant, qtx_patch_embedding_ln=patch_ln)
    w = tiny_weights(rng, c, variant.get("qtx_gate"), patch_ln)
    (tmp_path / "config.json").write_text(json.dumps(c))
    safetensors_np.write(str(tmp_path / "model.safetensors"), w)
    model = ViT.from_pretrained(tmp_path)
    batch = images(rng, 3, c)
    got = model.forward(batch)
    assert got.shape == (3, 3)
    for i in range(3):
        np.testing.assert_allclose(got[i], vit_ref(w, c, batch[i]), rtol=1e-4, atol=2e-4)
        np.testing.assert_array_equal(model.forward(batch[i])[0], got[i])  # batch == one at a time


@pytest.mark.parametrize("options", [{}, {"per_channel": False}, {"round_residuals": False, "activations": "dynamic-token"}])
def test_w8a8_batch_equals_one_at_a_time_and_tracks_fp32(rng, options):
    c = tiny_config(qtx_gate="linear_per_head")
    model = ViT(c, tiny_weights(rng, c, "linear_per_head"))
    model.calibrate(list(images(rng, 6, c)))
    model.quantize(**options)
    batch = images(rng, 4, c)
    got = model.forward(batch, w8a8=True)
    np.testing.assert_array_equal(np.concatenate([model.forward(b, w8a8=True) for b in batch]), got)
    fp32 = model.forward(batch)
    err = np.linalg.norm(got - fp32) / np.linalg.norm(fp32)
    assert 0 < err < 0.2, err  # a 16-wide random model, 6 calibration images: a loose sanity bound


def test_calibration_ranges_are_the_patch_matrix_and_the_tokens(rng):
    c = tiny_config()
    model = ViT(c, tiny_weights(rng, c))
    batch = list(images(rng, 3, c))
    model.calibrate(batch)
    model.quantize()
    pixels, tokens = qtx.RunningMinMaxObserver(), qtx.RunningMinMaxObserver()
    for img in batch:
        pixels.observe(model.patches(img))
        tokens.observe(model._embed(model.patches(img), False))
    for got, want in ((model.pixel_params, pixels.params()), (model.embedding_params, tokens.params())):
        assert (got.scale, got.zero_point) == (want.scale, want.zero_point)


def test_vit_errors(rng):
    c = tiny_config()
    w = tiny_weights(rng, c)
    model = ViT(c, w)
    with pytest.raises(TypeError, match="images must be uint8"):
        model.forward(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"images of shape \(2, 7, 7\)"):
        model.forward(np.zeros((2, 7, 7), np.uint8))
    with pytest.raises(ValueError, match="w8a8=True before quantize"):
        model.forward(images(rng, 1, c), w8a8=True)
    with pytest.raises(ValueError, match="not a multiple of patch_size"):
        ViT(dict(c, patch_size=3), w)
    with pytest.raises(ValueError, match="qtx_image_std values must be positive"):
        ViT(dict(c, qtx_image_std=[0.25, 0.0]), w)
    with pytest.raises(ValueError, match="qtx_image_mean and qtx_image_std have 1 and 2 values"):
        ViT(dict(c, qtx_image_mean=[0.3]), w)
    with pytest.raises(ValueError, match="ViT: the checkpoint has no tensor 'classifier.bias'"):
        ViT(c, {k: v for k, v in w.items() if k != "classifier.bias"})
    with pytest.raises(ValueError, match=r"patch kernel of shape \(16, 2, 4, 4\), expected \(16, 1, 4, 4\)"):
        ViT(dict(c, num_channels=1, qtx_image_mean=[0.3], qtx_image_std=[0.25]), w)


@pytest.mark.skipif(not os.path.exists(os.path.join(VIT_GATED, "model.safetensors")), reason="checkpoints/vit-gated missing")
def test_vit_gated_checkpoint_matches_float64_reference(rng):
    model = ViT.from_pretrained(VIT_GATED)
    config = json.load(open(os.path.join(VIT_GATED, "config.json")))
    weights = qtx.load_safetensors(os.path.join(VIT_GATED, "model.safetensors"))
    batch = rng.integers(0, 256, size=(2, 28, 28), dtype=np.uint8)
    got = model.forward(batch)
    for i in range(2):
        np.testing.assert_allclose(got[i], vit_ref(weights, config, batch[i][None]), rtol=1e-3, atol=1e-3)
