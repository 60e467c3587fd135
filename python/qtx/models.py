"""Transformer models on qtx's encoder layers: load a checkpoint, run it in FP32, calibrate, run it in W8A8.

    model = qtx.models.Bert.from_pretrained("models/minilm")     # config.json + model.safetensors
    tok = qtx.WordPiece("models/minilm/vocab.txt")
    ids = [tok.encode(s, 128) for s in sentences]
    model.calibrate(ids[:256])                                   # FP32 passes record every range
    model.quantize()                                             # the paper's static W8A8
    hidden = model.forward(ids[:32], w8a8=True)                  # one packed batch: (sum T, hidden)
    emb = qtx.models.sentence_embeddings(hidden, [len(i) for i in ids[:32]])

The embeddings (a table lookup) run in NumPy; every layer norm, GEMM, attention and quantizer runs
in qtx (without the GIL). A model also takes a PyTorch state dict (Hugging Face BertModel names, or
those of this project's tools/train models), and the paper's variants from the config's qtx keys:
qtx_softmax_gamma / qtx_softmax_zeta (clipped softmax) and qtx_gate (gated attention).
"""
from __future__ import annotations

import json
import os
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from . import _qtx

__all__ = ["Bert", "Opt", "ViT", "sentence_embeddings", "length_sorted_batches"]

_ACTIVATIONS = {"gelu": "gelu_erf", "gelu_python": "gelu_erf", "gelu_new": "gelu_tanh",
                "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}
_GATES = ("none", "linear_per_head", "mlp_per_head", "unconditional")


def _float32(value) -> np.ndarray:
    """A checkpoint tensor (NumPy array or PyTorch tensor) as a C-contiguous float32 array."""
    if hasattr(value, "detach"):  # torch.Tensor: no grad, on the CPU, as float32
        value = value.detach().cpu().float().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


def sentence_embeddings(hidden: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """Mean over each sequence's rows of packed hidden states, L2-normalised (sentence-transformers' pooling).

    hidden: (sum(lengths), H) as Bert.forward returns it. Returns (len(lengths), H) float32.
    """
    lengths = [int(n) for n in lengths]
    if any(n <= 0 for n in lengths) or sum(lengths) != hidden.shape[0]:
        raise ValueError(f"sentence_embeddings: lengths {lengths} do not partition the {hidden.shape[0]} rows")
    starts = np.cumsum([0] + lengths[:-1])
    means = np.add.reduceat(hidden.astype(np.float64), starts, axis=0) / np.asarray(lengths, np.float64)[:, None]
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def length_sorted_batches(sequences: Sequence, size: int) -> list[list[int]]:
    """The indices of `sequences` in batches of `size`: sorted by length when size > 1 (similar lengths
    together, as a serving system buckets them; each batch in ascending length), in order otherwise."""
    if size < 1:
        raise ValueError(f"length_sorted_batches: size ({size}) must be >= 1")
    order = list(range(len(sequences)))
    if size > 1:
        order.sort(key=lambda i: len(sequences[i]))
    return [order[i:i + size] for i in range(0, len(order), size)]


def _checked_tensor(weights: Mapping, key: str, ndim: int, model: str) -> np.ndarray:
    """weights[key] as float32 with `ndim` dimensions; a ValueError naming the model and the key otherwise."""
    if key not in weights:
        raise ValueError(f"{model}: the checkpoint has no tensor '{key}'")
    t = _float32(weights[key])
    if t.ndim != ndim:
        raise ValueError(f"{model}: tensor '{key}' is {t.ndim}-D, expected {ndim}-D")
    return t


def _round_to_grid(x: np.ndarray, params) -> None:
    """x <- dequantize(quantize(x)) in place: the values a uint8 tensor with these parameters holds."""
    _qtx.dequantize(_qtx.quantize(x, params), params, x)


class _Transformer:
    """What the models share: the config keys of the paper's variants (qtx_softmax_gamma / zeta,
    qtx_gate), checked tensor lookup, the attention gates, FP32 calibration and the W8A8 layers.

    A subclass sets _NORM ('post_ln' or 'pre_ln'), _CAUSAL, _LAYER_NAMES (EncoderLayer weight name ->
    checkpoint name after the layer's prefix), _GATE (the gate's names after the layer's prefix), and
    defines _layer_prefix(i), _fp32(ids, calibrators) and forward().
    """
    _NORM = "post_ln"
    _CAUSAL = False
    _LAYER_NAMES: Mapping[str, str] = {}
    _GATE = ""

    def __init__(self, config: Mapping, weights: Mapping, prefix: str, activation_key: str, default_activation: str,
                 ln_eps: float):
        self.config = dict(config)
        activation = self.config.get(activation_key, default_activation)
        self._weights = weights
        self._prefix = prefix
        self.hidden = self._int("hidden_size")
        self.n_layers = self._int("num_hidden_layers")
        self.n_heads = self._int("num_attention_heads")
        if self.n_heads <= 0 or self.hidden % self.n_heads:
            raise ValueError(f"{self._name}: hidden_size ({self.hidden}) is not a multiple of num_attention_heads "
                             f"({self.n_heads})")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{self._name}: {activation_key} '{activation}' is not supported ({', '.join(_ACTIVATIONS)})")
        self.ln_eps = ln_eps
        self.gamma = float(self.config.get("qtx_softmax_gamma", 0.0))
        self.zeta = float(self.config.get("qtx_softmax_zeta", 1.0))
        gate = self.config.get("qtx_gate", "none")
        if gate not in _GATES:
            raise ValueError(f"{self._name}: unsupported qtx_gate '{gate}' ({', '.join(_GATES)})")
        self.layers = [
            _qtx.EncoderLayer(self._layer_weights(i), n_heads=self.n_heads, norm=self._NORM,
                              activation=_ACTIVATIONS[activation], ln_eps=ln_eps, gamma=self.gamma, zeta=self.zeta,
                              causal=self._CAUSAL, gate=self._gate(i, gate))
            for i in range(self.n_layers)]
        self.calibrators = None
        self.w8a8_layers = None
        self._static_input = True

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike):
        """A checkpoint folder with config.json and model.safetensors (Hugging Face layout)."""
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        return cls(config, _qtx.load_safetensors(os.path.join(path, "model.safetensors")))

    # -- loading --------------------------------------------------------------------------------
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _int(self, key: str) -> int:
        if key not in self.config:
            raise ValueError(f"{self._name}: config has no {key}")
        return int(self.config[key])

    def _tensor(self, name: str, ndim: int) -> np.ndarray:
        return _checked_tensor(self._weights, self._prefix + name, ndim, self._name)

    def _layer_weights(self, i: int) -> dict:
        p = self._layer_prefix(i)
        return {k: self._tensor(p + v, 2 if k in ("wq", "wk", "wv", "wo", "fc1", "fc2") else 1)
                for k, v in self._LAYER_NAMES.items()}

    def _gate(self, i: int, kind: str):
        if kind == "none":
            return None
        p = self._layer_prefix(i) + self._GATE
        d_head = self.hidden // self.n_heads
        if kind == "linear_per_head":
            return _qtx.GateWeights(kind, self.n_heads, d_head, w1=self._tensor(p + "weight", 2),
                                    b1=self._tensor(p + "bias", 1))
        if kind == "unconditional":
            return _qtx.GateWeights(kind, self.n_heads, d_head, b1=self._tensor(p + "bias", 1))
        hidden = int(self.config.get("qtx_gate_hidden", 0)) or max(1, d_head // 4)
        return _qtx.GateWeights(kind, self.n_heads, d_head, w1=self._tensor(p + "fc1.weight", 3),
                                b1=self._tensor(p + "fc1.bias", 2), w2=self._tensor(p + "fc2.weight", 2),
                                b2=self._tensor(p + "fc2.bias", 1), hidden=hidden)

    def _batch(self, ids, max_positions: int, vocab: int) -> list[np.ndarray]:
        """One sequence (a sequence of ints) or a batch (a sequence of them) as a list of int arrays."""
        if len(ids) == 0:
            raise ValueError(f"{self._name}.forward: empty input")
        single = np.ndim(ids[0]) == 0
        batch = [np.asarray(ids, dtype=np.int64)] if single else [np.asarray(s, dtype=np.int64) for s in ids]
        for s in batch:
            if s.ndim != 1 or not 1 <= s.size <= max_positions:
                raise ValueError(f"{self._name}.forward: a sequence of {s.size} tokens (shape {s.shape}); the model "
                                 f"takes 1..{max_positions}")
            if s.min() < 0 or s.max() >= vocab:
                bad = s[(s < 0) | (s >= vocab)][0]
                raise ValueError(f"{self._name}.forward: token id {bad} outside the vocabulary of {vocab}")
        return batch

    def _fp32_layers(self, x, lengths, calibrators, layer_outputs) -> None:
        for i, (layer, cal) in enumerate(zip(self.layers, calibrators or [None] * len(self.layers))):
            layer.forward(x, lengths=lengths, calibrator=cal)
            if layer_outputs is not None:
                layer_outputs(i, x)

    # -- W8A8 -------------------------------------------------------------------------------------
    def calibrate(self, sequences: Iterable, estimator: str = "running_minmax",
                  layer_outputs: Callable[[int, np.ndarray], None] | None = None) -> None:
        """Runs FP32 forward passes, one per item (a sequence or a batch), recording every layer's ranges.

        Calling it again continues the same statistics; estimator ('running_minmax', the paper's,
        'minmax', 'percentile', 'mse') applies to a fresh calibration. layer_outputs(i, x), when given,
        sees each layer's output rows of each item (e.g. for qtx.OutlierStats; x is reused afterwards).
        """
        if self.calibrators is None:
            self.calibrators = [_qtx.LayerCalibrator() for _ in self.layers]
            for c in self.calibrators:
                c.use(estimator)
            self._start_calibration()
        seen = 0
        for ids in sequences:
            self._fp32(ids, self.calibrators, layer_outputs)
            seen += 1
        if seen == 0:
            raise ValueError(f"{self._name}.calibrate: no calibration sequences")

    def _start_calibration(self) -> None:
        """A fresh calibration begins (a model with ranges outside its layers resets them here)."""

    def quantize(self, *, activations: str = "static", round_residuals: bool = True, weight_bits: int = 8,
                 per_channel: bool = True, smoothing_alpha: float | None = None,
                 per_head_context: bool = False) -> None:
        """Makes the W8A8 layers from the calibration (arguments as qtx.QuantizedEncoderLayer), and what
        the model quantizes outside them (OPT: the embedded tokens' grid; ViT: also the patch GEMM)."""
        if self.calibrators is None:
            raise ValueError(f"{self._name}.quantize: calibrate() first")
        results = [c.result() for c in self.calibrators]
        if self._NORM == "post_ln":
            # Each layer's input is the previous layer's output, on the grid that layer wrote it with.
            for previous, cal in zip(results, results[1:]):
                cal["input"] = previous["ffn_ln"]
        self.w8a8_layers = [
            _qtx.QuantizedEncoderLayer(layer, cal, activations=activations, round_residuals=round_residuals,
                                       weight_bits=weight_bits, per_channel=per_channel,
                                       smoothing_alpha=smoothing_alpha, per_head_context=per_head_context)
            for layer, cal in zip(self.layers, results)]
        self._static_input = activations == "static"
        self._quantize_embeddings(per_channel)

    def _quantize_embeddings(self, per_channel: bool) -> None:
        """The W8A8 parts outside the layers, from the calibration (none in BERT)."""

    def _check_w8a8(self, w8a8: bool) -> None:
        if w8a8 and self.w8a8_layers is None:
            raise ValueError(f"{self._name}.forward: w8a8=True before quantize()")


class Bert(_Transformer):
    """A BERT encoder (post-LN, Hugging Face weight names) on qtx.EncoderLayer / QuantizedEncoderLayer.

    config: the checkpoint's config.json as a dict. weights: name -> array or torch tensor
    (a "bert." prefix, as in BertForMaskedLM state dicts, is accepted). A BertForMaskedLM
    checkpoint's MLM head (cls.predictions.*) is loaded too: mlm_logits().
    """
    _LAYER_NAMES = {"wq": "attention.self.query.weight", "bq": "attention.self.query.bias",
                    "wk": "attention.self.key.weight", "bk": "attention.self.key.bias",
                    "wv": "attention.self.value.weight", "bv": "attention.self.value.bias",
                    "wo": "attention.output.dense.weight", "bo": "attention.output.dense.bias",
                    "attention_ln_gamma": "attention.output.LayerNorm.weight",
                    "attention_ln_beta": "attention.output.LayerNorm.bias",
                    "fc1": "intermediate.dense.weight", "b1": "intermediate.dense.bias",
                    "fc2": "output.dense.weight", "b2": "output.dense.bias",
                    "ffn_ln_gamma": "output.LayerNorm.weight", "ffn_ln_beta": "output.LayerNorm.bias"}
    _GATE = "attention.self.gate."

    def __init__(self, config: Mapping, weights: Mapping):
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        super().__init__(config, weights, prefix, "hidden_act", "gelu", float(config.get("layer_norm_eps", 1e-12)))
        self.max_positions = self._int("max_position_embeddings")
        self.word = self._tensor("embeddings.word_embeddings.weight", 2)
        self.vocab = self.word.shape[0]
        self.position = self._tensor("embeddings.position_embeddings.weight", 2)
        token_type = self._tensor("embeddings.token_type_embeddings.weight", 2)
        for name, t in (("word", self.word), ("position", self.position), ("token_type", token_type)):
            if t.shape[1] != self.hidden:
                raise ValueError(f"Bert: {name} embeddings have width {t.shape[1]}, hidden_size is {self.hidden}")
        if self.position.shape[0] < self.max_positions:
            raise ValueError(f"Bert: {self.position.shape[0]} position embeddings, max_position_embeddings is "
                             f"{self.max_positions}")
        self.token_type = token_type[0]  # every sequence is segment 0 (sentence embeddings)
        self.ln_gamma = self._tensor("embeddings.LayerNorm.weight", 1)
        self.ln_beta = self._tensor("embeddings.LayerNorm.bias", 1)
        self._mlm = None
        mlm = "cls.predictions."
        if mlm + "bias" in weights:  # BertForMaskedLM: the head sits beside "bert.", not under it
            get = lambda name, ndim: _checked_tensor(weights, name, ndim, "Bert")  # noqa: E731
            self._mlm = dict(dense=_qtx.pack_b(get(mlm + "transform.dense.weight", 2).T.copy()),
                             dense_bias=get(mlm + "transform.dense.bias", 1),
                             ln_gamma=get(mlm + "transform.LayerNorm.weight", 1),
                             ln_beta=get(mlm + "transform.LayerNorm.bias", 1),
                             decoder=_qtx.pack_b(self.word.T.copy()), bias=get(mlm + "bias", 1))
        del self._weights  # the layers keep what they use

    def _layer_prefix(self, i: int) -> str:
        return f"encoder.layer.{i}."

    # -- forward ----------------------------------------------------------------------------------
    def embed(self, ids) -> tuple[np.ndarray, list[int] | None]:
        """Word + position + token-type embeddings of the packed batch (before the embeddings' LN), and the lengths."""
        batch = self._batch(ids, self.max_positions, self.vocab)
        x = np.concatenate([self.word[s] + self.position[: s.size] for s in batch])
        x += self.token_type  # added last, in the C++ example's order: the same float sums
        return x, (None if len(batch) == 1 else [s.size for s in batch])

    def _fp32(self, ids, calibrators=None, layer_outputs=None) -> np.ndarray:
        """The FP32 forward; calibrators (one per layer) record every layer's quantization points."""
        x, lengths = self.embed(ids)
        _qtx.layer_norm(x, self.ln_gamma, self.ln_beta, x, eps=self.ln_eps)
        self._fp32_layers(x, lengths, calibrators, layer_outputs)
        return x

    def mlm_logits(self, hidden: np.ndarray) -> np.ndarray:
        """Masked-LM logits (T, vocab) of hidden states (forward()'s): dense + GELU + LN, then the word
        embeddings (tied) + bias, in float as in the paper's W8A8. Needs a BertForMaskedLM checkpoint."""
        if self._mlm is None:
            raise ValueError("Bert.mlm_logits: the checkpoint has no MLM head (cls.predictions.* tensors)")
        h = np.asarray(hidden)
        if h.ndim != 2 or h.shape[1] != self.hidden:
            raise ValueError(f"Bert.mlm_logits: hidden states of shape {h.shape}, expected (T, {self.hidden})")
        m = self._mlm
        t = _qtx.gemm(np.ascontiguousarray(h, np.float32), m["dense"], epilogue=[_qtx.epilogue.bias(m["dense_bias"]),
                                                                              _qtx.epilogue.gelu()])
        _qtx.layer_norm(t, m["ln_gamma"], m["ln_beta"], t, eps=self.ln_eps)
        return _qtx.gemm(t, m["decoder"], epilogue=[_qtx.epilogue.bias(m["bias"])])

    def forward(self, ids, *, w8a8: bool = False) -> np.ndarray:
        """Hidden states of the last layer, (T, hidden) float32.

        ids: one sequence of token ids, or a list of sequences: a batch run in one pass, packed along
        the rows without padding (each sequence attends to itself only), rows in batch order.
        w8a8: run the quantized layers (quantize() first).
        """
        self._check_w8a8(w8a8)
        if not w8a8:
            return self._fp32(ids)
        x, lengths = self.embed(ids)
        first = self.w8a8_layers[0]
        if first.round_residuals and self._static_input:
            # The paper's W8A8: the LN output on its uint8 grid is the residual stream, passed from layer to layer.
            x_q = _qtx.layer_norm(x, self.ln_gamma, self.ln_beta, np.empty(x.shape, np.uint8), eps=self.ln_eps,
                                  out_params=first.input_params)
            _qtx.dequantize(x_q, first.input_params, x)
            for layer in self.w8a8_layers:
                layer.forward(x, x_q, lengths=lengths)
        else:
            _qtx.layer_norm(x, self.ln_gamma, self.ln_beta, x, eps=self.ln_eps)
            for layer in self.w8a8_layers:
                layer.forward(x, lengths=lengths)
        return x


class Opt(_Transformer):
    """An OPT decoder (pre-LN, causal, learned positions offset by 2, ReLU FFN, LM head tied to the token
    embeddings; Hugging Face OPTForCausalLM / OPTModel names) on qtx.EncoderLayer / QuantizedEncoderLayer.

    W8A8 as in examples/opt: every layer's quantization points, and the embedded tokens rounded to
    their uint8 grid (in a pre-LN model that is the start of the residual stream); the final LN and
    the LM head stay float, as in the paper.
    """
    _NORM = "pre_ln"
    _CAUSAL = True
    _LAYER_NAMES = {"wq": "self_attn.q_proj.weight", "bq": "self_attn.q_proj.bias",
                    "wk": "self_attn.k_proj.weight", "bk": "self_attn.k_proj.bias",
                    "wv": "self_attn.v_proj.weight", "bv": "self_attn.v_proj.bias",
                    "wo": "self_attn.out_proj.weight", "bo": "self_attn.out_proj.bias",
                    "attention_ln_gamma": "self_attn_layer_norm.weight", "attention_ln_beta": "self_attn_layer_norm.bias",
                    "fc1": "fc1.weight", "b1": "fc1.bias", "fc2": "fc2.weight", "b2": "fc2.bias",
                    "ffn_ln_gamma": "final_layer_norm.weight", "ffn_ln_beta": "final_layer_norm.bias"}
    _GATE = "self_attn.gate."
    POSITION_OFFSET = 2  # OPT's learned positions start at row 2

    def __init__(self, config: Mapping, weights: Mapping):
        prefix = next((p for p in ("model.decoder.", "decoder.", "") if p + "embed_tokens.weight" in weights), "")
        if not config.get("do_layer_norm_before", True):
            raise ValueError("Opt: do_layer_norm_before = false (post-LN OPT-350m) is not supported")
        super().__init__(config, weights, prefix, "activation_function", "relu", 1e-5)
        self.max_positions = self._int("max_position_embeddings")
        self.tokens = self._tensor("embed_tokens.weight", 2)
        self.vocab = self.tokens.shape[0]
        self.positions = self._tensor("embed_positions.weight", 2)
        for name, t in (("token", self.tokens), ("position", self.positions)):
            if t.shape[1] != self.hidden:
                raise ValueError(f"Opt: {name} embeddings have width {t.shape[1]}, hidden_size is {self.hidden}")
        if self.positions.shape[0] < self.max_positions + self.POSITION_OFFSET:
            raise ValueError(f"Opt: {self.positions.shape[0]} position embeddings, max_position_embeddings + 2 is "
                             f"{self.max_positions + self.POSITION_OFFSET}")
        self.final_ln_gamma = self._tensor("final_layer_norm.weight", 1)
        self.final_ln_beta = self._tensor("final_layer_norm.bias", 1)
        self._lm_head = _qtx.pack_b(self.tokens.T.copy())  # (hidden, vocab), packed once
        self.embedding_observer = None
        del self._weights  # the layers keep what they use

    def _layer_prefix(self, i: int) -> str:
        return f"layers.{i}."

    # -- forward ----------------------------------------------------------------------------------
    def embed(self, ids) -> tuple[np.ndarray, list[int] | None]:
        """Token + position embeddings of the packed batch (each sequence from position 0), and the lengths."""
        batch = self._batch(ids, self.max_positions, self.vocab)
        x = np.concatenate([self.tokens[s] + self.positions[self.POSITION_OFFSET:self.POSITION_OFFSET + s.size]
                            for s in batch])
        return x, (None if len(batch) == 1 else [s.size for s in batch])

    def _start_calibration(self) -> None:
        self.embedding_observer = _qtx.RunningMinMaxObserver()

    def _fp32(self, ids, calibrators=None, layer_outputs=None) -> np.ndarray:
        x, lengths = self.embed(ids)
        if calibrators:
            self.embedding_observer.observe(x)
        self._fp32_layers(x, lengths, calibrators, layer_outputs)
        return x

    def _quantize_embeddings(self, per_channel: bool) -> None:
        self.embedding_params = self.embedding_observer.params()

    def forward(self, ids, *, w8a8: bool = False) -> np.ndarray:
        """Hidden states after the final layer norm, (T, hidden) float32 (ids as Bert.forward: one sequence,
        or a batch packed along the rows, each sequence attending causally to itself only)."""
        self._check_w8a8(w8a8)
        if not w8a8:
            x = self._fp32(ids)
        else:
            x, lengths = self.embed(ids)
            _round_to_grid(x, self.embedding_params)
            for layer in self.w8a8_layers:
                layer.forward(x, lengths=lengths)
        return _qtx.layer_norm(x, self.final_ln_gamma, self.final_ln_beta, x, eps=self.ln_eps)

    def logits(self, ids, *, w8a8: bool = False) -> np.ndarray:
        """Next-token logits (T, vocab) float32: forward() through the tied LM head."""
        return _qtx.gemm(self.forward(ids, w8a8=w8a8), self._lm_head)


class ViT(_Transformer):
    """A Vision Transformer classifier (pre-LN, Hugging Face ViTForImageClassification names) on
    qtx.EncoderLayer / QuantizedEncoderLayer, as examples/vit:

        x0 = [CLS; patches(img) W_p^T + b_p] + E_pos      logits = LN_f(x_L)[CLS] W_c^T + b_c

    Images are uint8 (channels, size, size), (size, size) for one channel, or a batch of either
    (one packed pass). Pixels are normalised as the config's qtx_image_mean / qtx_image_std say.
    W8A8: every layer's quantization points, the patch pixels (a uint8 patch GEMM, QLinear) and the
    embedded tokens rounded to their grid; the final LN and the classifier stay float.
    """
    _NORM = "pre_ln"
    _LAYER_NAMES = {"wq": "attention.attention.query.weight", "bq": "attention.attention.query.bias",
                    "wk": "attention.attention.key.weight", "bk": "attention.attention.key.bias",
                    "wv": "attention.attention.value.weight", "bv": "attention.attention.value.bias",
                    "wo": "attention.output.dense.weight", "bo": "attention.output.dense.bias",
                    "attention_ln_gamma": "layernorm_before.weight", "attention_ln_beta": "layernorm_before.bias",
                    "fc1": "intermediate.dense.weight", "b1": "intermediate.dense.bias",
                    "fc2": "output.dense.weight", "b2": "output.dense.bias",
                    "ffn_ln_gamma": "layernorm_after.weight", "ffn_ln_beta": "layernorm_after.bias"}
    _GATE = "attention.attention.gate."

    def __init__(self, config: Mapping, weights: Mapping):
        prefix = "vit." if "vit.embeddings.cls_token" in weights else ""
        super().__init__(config, weights, prefix, "hidden_act", "gelu", float(config.get("layer_norm_eps", 1e-12)))
        if self.ln_eps <= 0:
            raise ValueError(f"ViT: layer_norm_eps ({self.ln_eps}) must be positive")
        self.image_size = self._int("image_size")
        self.patch_size = self._int("patch_size")
        if self.patch_size <= 0 or self.image_size % self.patch_size:
            raise ValueError(f"ViT: image_size ({self.image_size}) is not a multiple of patch_size ({self.patch_size})")
        self.channels = int(self.config.get("num_channels", 1))
        self.grid = self.image_size // self.patch_size
        self.tokens = self.grid * self.grid + 1
        self.image_mean = np.asarray(self.config.get("qtx_image_mean", [0.0] * self.channels), np.float32)
        self.image_std = np.asarray(self.config.get("qtx_image_std", [1.0] * self.channels), np.float32)
        if self.image_mean.shape != (self.channels,) or self.image_std.shape != (self.channels,):
            raise ValueError(f"ViT: qtx_image_mean and qtx_image_std have {self.image_mean.size} and "
                             f"{self.image_std.size} values, num_channels is {self.channels}")
        if np.any(self.image_std <= 0):
            raise ValueError(f"ViT: qtx_image_std values must be positive, found {self.image_std.tolist()}")
        kernel = self._tensor("embeddings.patch_embeddings.projection.weight", 4)
        if kernel.shape != (self.hidden, self.channels, self.patch_size, self.patch_size):
            raise ValueError(f"ViT: patch kernel of shape {kernel.shape}, expected "
                             f"{(self.hidden, self.channels, self.patch_size, self.patch_size)}")
        self.patch_weight = np.ascontiguousarray(kernel.reshape(self.hidden, -1))  # (hidden, C*p*p), rows (c, y, x)
        self.patch_bias = self._tensor("embeddings.patch_embeddings.projection.bias", 1)
        self._patch = _qtx.pack_b(self.patch_weight.T.copy())
        self.cls = self._tensor("embeddings.cls_token", 3).reshape(-1)
        self.positions = self._tensor("embeddings.position_embeddings", 3).reshape(-1, self.hidden)
        if self.cls.size != self.hidden or self.positions.shape[0] != self.tokens:
            raise ValueError(f"ViT: cls_token / position_embeddings of shapes {self.cls.shape} / {self.positions.shape}, "
                             f"expected ({self.hidden},) / ({self.tokens}, {self.hidden})")
        self.patch_ln = None
        if self.config.get("qtx_patch_embedding_ln", False):
            self.patch_ln = (self._tensor("embeddings.patch_layernorm.weight", 1),
                             self._tensor("embeddings.patch_layernorm.bias", 1))
        self.final_ln_gamma = self._tensor("layernorm.weight", 1)
        self.final_ln_beta = self._tensor("layernorm.bias", 1)
        self.classifier = _checked_tensor(weights, "classifier.weight", 2, "ViT")
        self.classifier_bias = _checked_tensor(weights, "classifier.bias", 1, "ViT")
        labels = int(self.config.get("num_labels", self.classifier.shape[0]))
        if self.classifier.shape != (labels, self.hidden) or self.classifier_bias.shape != (labels,):
            raise ValueError(f"ViT: classifier of shape {self.classifier.shape}, expected ({labels}, {self.hidden})")
        self._classifier = _qtx.pack_b(self.classifier.T.copy())
        self.pixel_observer = self.embedding_observer = None
        del self._weights  # the layers keep what they use

    def _layer_prefix(self, i: int) -> str:
        return f"encoder.layer.{i}."

    # -- forward ----------------------------------------------------------------------------------
    def patches(self, images) -> np.ndarray:
        """The patch matrix (images * patches, C*p*p) float32 of uint8 images: rows are patches in
        raster order, columns (c, y, x) as the convolution kernel's; pixels (p/255 - mean[c]) / std[c]."""
        img = np.asarray(images)
        if img.dtype != np.uint8:
            raise TypeError(f"ViT.forward: images must be uint8, got {img.dtype}")
        S, C, p, G = self.image_size, self.channels, self.patch_size, self.grid
        if img.shape[-2:] != (S, S) or (C > 1 and (img.ndim < 3 or img.shape[-3] != C)):
            raise ValueError(f"ViT.forward: images of shape {img.shape}; the model takes (..., {C}, {S}, {S})"
                             + (f" or (..., {S}, {S})" if C == 1 else ""))
        img = img.reshape(-1, C, G, p, G, p)  # n, c, gy, y, gx, x
        pixels = (img.astype(np.float32) / np.float32(255.0) - self.image_mean[:, None, None, None, None]) \
            / self.image_std[:, None, None, None, None]
        return np.ascontiguousarray(pixels.transpose(0, 2, 4, 1, 3, 5).reshape(-1, C * p * p))

    def _embed(self, patch_rows: np.ndarray, w8a8: bool) -> np.ndarray:
        """Tokens (images * tokens, hidden) from the patch matrix: the patch GEMM (float, or uint8 in W8A8),
        [CLS] in each image's row 0, the position embeddings."""
        n = patch_rows.shape[0] // (self.tokens - 1)
        if w8a8:
            embedded = self._patch_q.forward(_qtx.quantize(patch_rows, self.pixel_params))
        else:
            embedded = _qtx.gemm(patch_rows, self._patch, epilogue=[_qtx.epilogue.bias(self.patch_bias)])
        if self.patch_ln is not None:
            _qtx.layer_norm(embedded, self.patch_ln[0], self.patch_ln[1], embedded, eps=self.ln_eps)
        x = np.empty((n, self.tokens, self.hidden), np.float32)
        x[:, 0] = self.cls
        x[:, 1:] = embedded.reshape(n, self.tokens - 1, self.hidden)
        x += self.positions
        return x.reshape(-1, self.hidden)

    def _start_calibration(self) -> None:
        self.pixel_observer = _qtx.RunningMinMaxObserver()
        self.embedding_observer = _qtx.RunningMinMaxObserver()

    def _fp32(self, images, calibrators=None, layer_outputs=None) -> np.ndarray:
        patch_rows = self.patches(images)
        x = self._embed(patch_rows, False)
        if calibrators:
            self.pixel_observer.observe(patch_rows)
            self.embedding_observer.observe(x)
        lengths = self._lengths(x)
        self._fp32_layers(x, lengths, calibrators, layer_outputs)
        return x

    def _lengths(self, x: np.ndarray) -> list[int] | None:
        n = x.shape[0] // self.tokens
        return None if n == 1 else [self.tokens] * n

    def _quantize_embeddings(self, per_channel: bool) -> None:
        # The uint8 patch GEMM (per_channel as the layers') and the embedded tokens' grid.
        self.pixel_params = self.pixel_observer.params()
        self.embedding_params = self.embedding_observer.params()
        self._patch_q = _qtx.QLinear(self.patch_weight, self.patch_bias, self.pixel_params, per_channel=per_channel)

    def forward(self, images, *, w8a8: bool = False) -> np.ndarray:
        """Class logits (images, classes) float32 of one image or a batch (one packed pass)."""
        self._check_w8a8(w8a8)
        if not w8a8:
            x = self._fp32(images)
        else:
            x = self._embed(self.patches(images), True)
            _round_to_grid(x, self.embedding_params)
            lengths = self._lengths(x)
            for layer in self.w8a8_layers:
                layer.forward(x, lengths=lengths)
        cls_rows = np.ascontiguousarray(x[::self.tokens])
        _qtx.layer_norm(cls_rows, self.final_ln_gamma, self.final_ln_beta, cls_rows, eps=self.ln_eps)
        return _qtx.gemm(cls_rows, self._classifier, epilogue=[_qtx.epilogue.bias(self.classifier_bias)])
