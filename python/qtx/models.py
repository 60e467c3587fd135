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
from typing import Iterable, Mapping, Sequence

import numpy as np

from . import _qtx

__all__ = ["Bert", "sentence_embeddings", "length_sorted_batches"]

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


class Bert:
    """A BERT encoder (post-LN, Hugging Face weight names) on qtx.EncoderLayer / QuantizedEncoderLayer.

    config: the checkpoint's config.json as a dict. weights: name -> array or torch tensor
    (a "bert." prefix, as in BertForMaskedLM state dicts, is accepted).
    """

    def __init__(self, config: Mapping, weights: Mapping):
        self.config = dict(config)
        c = self.config
        try:
            self.hidden = int(c["hidden_size"])
            self.n_layers = int(c["num_hidden_layers"])
            self.n_heads = int(c["num_attention_heads"])
            self.max_positions = int(c["max_position_embeddings"])
        except KeyError as e:
            raise ValueError(f"Bert: config has no {e.args[0]}") from None
        if self.n_heads <= 0 or self.hidden % self.n_heads:
            raise ValueError(f"Bert: hidden_size ({self.hidden}) is not a multiple of num_attention_heads ({self.n_heads})")
        self.ln_eps = float(c.get("layer_norm_eps", 1e-12))
        act = c.get("hidden_act", "gelu")
        if act not in _ACTIVATIONS:
            raise ValueError(f"Bert: hidden_act '{act}' is not supported ({', '.join(_ACTIVATIONS)})")
        self.gamma = float(c.get("qtx_softmax_gamma", 0.0))
        self.zeta = float(c.get("qtx_softmax_zeta", 1.0))
        gate = c.get("qtx_gate", "none")
        if gate not in _GATES:
            raise ValueError(f"Bert: unsupported qtx_gate '{gate}' ({', '.join(_GATES)})")

        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
        self._weights = weights
        self._prefix = prefix
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
        self.layers = [
            _qtx.EncoderLayer(self._layer_weights(i), n_heads=self.n_heads, norm="post_ln",
                              activation=_ACTIVATIONS[act], ln_eps=self.ln_eps, gamma=self.gamma, zeta=self.zeta,
                              gate=self._gate(i, gate))
            for i in range(self.n_layers)]
        self.calibrators = None
        self.w8a8_layers = None
        self._static_input = True
        del self._weights  # the layers keep what they use

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "Bert":
        """A checkpoint folder with config.json and model.safetensors (Hugging Face layout)."""
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        return cls(config, _qtx.load_safetensors(os.path.join(path, "model.safetensors")))

    # -- loading --------------------------------------------------------------------------------
    def _tensor(self, name: str, ndim: int) -> np.ndarray:
        key = self._prefix + name
        if key not in self._weights:
            raise ValueError(f"Bert: the checkpoint has no tensor '{key}'")
        t = _float32(self._weights[key])
        if t.ndim != ndim:
            raise ValueError(f"Bert: tensor '{key}' is {t.ndim}-D, expected {ndim}-D")
        return t

    def _layer_weights(self, i: int) -> dict:
        p = f"encoder.layer.{i}."
        names = {"wq": "attention.self.query.weight", "bq": "attention.self.query.bias",
                 "wk": "attention.self.key.weight", "bk": "attention.self.key.bias",
                 "wv": "attention.self.value.weight", "bv": "attention.self.value.bias",
                 "wo": "attention.output.dense.weight", "bo": "attention.output.dense.bias",
                 "attention_ln_gamma": "attention.output.LayerNorm.weight",
                 "attention_ln_beta": "attention.output.LayerNorm.bias",
                 "fc1": "intermediate.dense.weight", "b1": "intermediate.dense.bias",
                 "fc2": "output.dense.weight", "b2": "output.dense.bias",
                 "ffn_ln_gamma": "output.LayerNorm.weight", "ffn_ln_beta": "output.LayerNorm.bias"}
        return {k: self._tensor(p + v, 2 if k in ("wq", "wk", "wv", "wo", "fc1", "fc2") else 1)
                for k, v in names.items()}

    def _gate(self, i: int, kind: str):
        if kind == "none":
            return None
        p = f"encoder.layer.{i}.attention.self.gate."
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

    # -- forward ----------------------------------------------------------------------------------
    def _batch(self, ids) -> list[np.ndarray]:
        """One sequence (a sequence of ints) or a batch (a sequence of them) as a list of int arrays."""
        if len(ids) == 0:
            raise ValueError("Bert.forward: empty input")
        single = np.ndim(ids[0]) == 0
        batch = [np.asarray(ids, dtype=np.int64)] if single else [np.asarray(s, dtype=np.int64) for s in ids]
        for s in batch:
            if s.ndim != 1 or not 1 <= s.size <= self.max_positions:
                raise ValueError(f"Bert.forward: a sequence of {s.size} tokens (shape {s.shape}); the model takes "
                                 f"1..{self.max_positions}")
            if s.min() < 0 or s.max() >= self.vocab:
                bad = s[(s < 0) | (s >= self.vocab)][0]
                raise ValueError(f"Bert.forward: token id {bad} outside the vocabulary of {self.vocab}")
        return batch

    def embed(self, ids) -> tuple[np.ndarray, list[int] | None]:
        """Word + position + token-type embeddings of the packed batch (before the embeddings' LN), and the lengths."""
        batch = self._batch(ids)
        x = np.concatenate([self.word[s] + self.position[: s.size] for s in batch])
        x += self.token_type  # added last, in the C++ example's order: the same float sums
        return x, (None if len(batch) == 1 else [s.size for s in batch])

    def _fp32(self, ids, calibrators=None) -> np.ndarray:
        """The FP32 forward; calibrators (one per layer) record every layer's quantization points."""
        x, lengths = self.embed(ids)
        _qtx.layer_norm(x, self.ln_gamma, self.ln_beta, x, eps=self.ln_eps)
        for layer, cal in zip(self.layers, calibrators or [None] * len(self.layers)):
            layer.forward(x, lengths=lengths, calibrator=cal)
        return x

    def forward(self, ids, *, w8a8: bool = False) -> np.ndarray:
        """Hidden states of the last layer, (T, hidden) float32.

        ids: one sequence of token ids, or a list of sequences: a batch run in one pass, packed along
        the rows without padding (each sequence attends to itself only), rows in batch order.
        w8a8: run the quantized layers (quantize() first).
        """
        if w8a8 and self.w8a8_layers is None:
            raise ValueError("Bert.forward: w8a8=True before quantize()")
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

    # -- W8A8 -------------------------------------------------------------------------------------
    def calibrate(self, sequences: Iterable, estimator: str = "running_minmax") -> None:
        """Runs FP32 forward passes, one per item (a sequence or a batch), recording every layer's ranges.

        Calling it again continues the same statistics; estimator ('running_minmax', the paper's,
        'minmax', 'percentile', 'mse') applies to a fresh calibration.
        """
        if self.calibrators is None:
            self.calibrators = [_qtx.LayerCalibrator() for _ in self.layers]
            for c in self.calibrators:
                c.use(estimator)
        seen = 0
        for ids in sequences:
            self._fp32(ids, self.calibrators)
            seen += 1
        if seen == 0:
            raise ValueError("Bert.calibrate: no calibration sequences")

    def quantize(self, *, activations: str = "static", round_residuals: bool = True, weight_bits: int = 8,
                 per_channel: bool = True, smoothing_alpha: float | None = None) -> None:
        """Makes the W8A8 layers from the calibration (arguments as qtx.QuantizedEncoderLayer)."""
        if self.calibrators is None:
            raise ValueError("Bert.quantize: calibrate() first")
        results = [c.result() for c in self.calibrators]
        # Each layer's input is the previous layer's output, on the grid that layer wrote it with.
        for previous, cal in zip(results, results[1:]):
            cal["input"] = previous["ffn_ln"]
        self.w8a8_layers = [
            _qtx.QuantizedEncoderLayer(layer, cal, activations=activations, round_residuals=round_residuals,
                                       weight_bits=weight_bits, per_channel=per_channel,
                                       smoothing_alpha=smoothing_alpha)
            for layer, cal in zip(self.layers, results)]
        self._static_input = activations == "static"
