"""A BERT encoder (Hugging Face names and config.json) as an ONNX graph, built with onnx.helper
straight from the model's .safetensors: no hub download and no PyTorch.

The graph spells each layer the way PyTorch's exporter spells Hugging Face's BertModel (Q/K/V
MatMul+Add+Reshape+Transpose, Div by sqrt(d_head), the additive mask (1 - mask) * -10000, Softmax,
erf GELU, Add+LayerNormalization, position ids sliced from a [1, max_positions] constant by the
input's length), because those are the patterns onnxruntime.transformers' BERT optimizer fuses into
EmbedLayerNormalization, Attention, SkipLayerNormalization and BiasGelu.

Inputs input_ids, attention_mask, token_type_ids (int64, batch x length); output last_hidden_state
(batch x length x hidden, float32).
"""
import json
import sys
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))  # the shared numpy reader
import safetensors_np  # noqa: E402

OPSET = 17  # has LayerNormalization


class _graph:
    def __init__(self):
        self.nodes, self.initializers, self.count = [], [], 0

    def const(self, name, value):
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type, inputs, **attributes):
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attributes))
        return out


def _layer_norm(g, x, tensors, name, eps):
    return g.op("LayerNormalization", [x, g.const(name + ".weight", tensors[name + ".weight"]),
                                       g.const(name + ".bias", tensors[name + ".bias"])], axis=-1, epsilon=eps)


def _linear(g, x, tensors, name):
    """x W^T + b with W stored transposed once (ONNX MatMul takes in x out)."""
    w = g.const(name + ".weight", np.ascontiguousarray(tensors[name + ".weight"].T))
    return g.op("Add", [g.op("MatMul", [x, w]), g.const(name + ".bias", tensors[name + ".bias"])])


def _embeddings(g, tensors, eps, max_positions):
    word = g.op("Gather", [g.const("embeddings.word_embeddings.weight",
                                   tensors["embeddings.word_embeddings.weight"]), "input_ids"])
    segment = g.op("Gather", [g.const("embeddings.token_type_embeddings.weight",
                                      tensors["embeddings.token_type_embeddings.weight"]), "token_type_ids"])
    length = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("one", np.array(1, np.int64))])
    ends = g.op("Unsqueeze", [length, g.const("axes_0", np.array([0], np.int64))])
    positions = g.op("Slice", [g.const("position_ids", np.arange(max_positions, dtype=np.int64)[None, :]),
                               g.const("starts_0", np.array([0], np.int64)), ends,
                               g.const("axes_1", np.array([1], np.int64)), g.const("steps_1", np.array([1], np.int64))])
    position = g.op("Gather", [g.const("embeddings.position_embeddings.weight",
                                       tensors["embeddings.position_embeddings.weight"]), positions])
    return _layer_norm(g, g.op("Add", [g.op("Add", [word, segment]), position]), tensors, "embeddings.LayerNorm", eps)


def _mask_bias(g):
    """(1 - mask) * -10000 as [batch, 1, 1, length], added to the attention scores."""
    mask = g.op("Unsqueeze", [g.op("Unsqueeze", ["attention_mask", g.const("axes_1b", np.array([1], np.int64))]),
                              g.const("axes_2", np.array([2], np.int64))])
    inverted = g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), g.op("Cast", [mask], to=TensorProto.FLOAT)])
    return g.op("Mul", [inverted, g.const("mask_value", np.array(-10000.0, np.float32))])


def _layer(g, x, mask_bias, tensors, prefix, heads, hidden, eps):
    d_head = hidden // heads
    split = g.const(prefix + "split_heads", np.array([0, 0, heads, d_head], np.int64))

    def project(name, perm):
        return g.op("Transpose", [g.op("Reshape", [_linear(g, x, tensors, prefix + name), split])], perm=perm)

    q = project("attention.self.query", [0, 2, 1, 3])
    k = project("attention.self.key", [0, 2, 3, 1])  # already K^T
    v = project("attention.self.value", [0, 2, 1, 3])
    sqrt_d_head = g.const(prefix + "sqrt_d_head", np.array(math.sqrt(d_head), np.float32))
    scores = g.op("Div", [g.op("MatMul", [q, k]), sqrt_d_head])
    probs = g.op("Softmax", [g.op("Add", [scores, mask_bias])], axis=-1)
    context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    context = g.op("Reshape", [context, g.const(prefix + "merge_heads", np.array([0, 0, hidden], np.int64))])
    attention = _linear(g, context, tensors, prefix + "attention.output.dense")
    x = _layer_norm(g, g.op("Add", [attention, x]), tensors, prefix + "attention.output.LayerNorm", eps)

    h = _linear(g, x, tensors, prefix + "intermediate.dense")
    erf = g.op("Erf", [g.op("Div", [h, g.const(prefix + "sqrt2", np.array(math.sqrt(2.0), np.float32))])])
    gelu = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, g.const(prefix + "one", np.array(1.0, np.float32))])]),
                        g.const(prefix + "half", np.array(0.5, np.float32))])
    out = _linear(g, gelu, tensors, prefix + "output.dense")
    return _layer_norm(g, g.op("Add", [out, x]), tensors, prefix + "output.LayerNorm", eps)


def export(model_dir, path):
    """Writes the ONNX model of the BERT checkpoint in model_dir (config.json, model.safetensors)."""
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("qtx_gate", "none") != "none" or config.get("qtx_softmax_gamma", 0.0) != 0.0:
        raise ValueError(f"bert_onnx.export: {model_dir} is not a vanilla BERT (qtx_gate / qtx_softmax_gamma)")
    tensors = {k: v.astype(np.float32) for k, v in safetensors_np.read(model_dir / "model.safetensors").items()
               if v.dtype == np.float32}
    hidden, heads, eps = config["hidden_size"], config["num_attention_heads"], config.get("layer_norm_eps", 1e-12)
    g = _graph()
    x = _embeddings(g, tensors, eps, config["max_position_embeddings"])
    mask_bias = _mask_bias(g)
    for i in range(config["num_hidden_layers"]):
        x = _layer(g, x, mask_bias, tensors, f"encoder.layer.{i}.", heads, hidden, eps)
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))

    def int_input(name):
        return helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "length"])

    graph = helper.make_graph(g.nodes, "bert", [int_input("input_ids"), int_input("attention_mask"),
                                                int_input("token_type_ids")],
                              [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                                             ["batch", "length", hidden])], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="qtx-peers")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return config
