"""A BERT-base-shaped encoder of one layer with random weights (hidden 768, 12 heads, FFN 3072), as a
Hugging Face checkpoint (config.json + model.safetensors), so qtx and ONNX Runtime run exactly the
same layer, plus random token ids of length 128 to calibrate and time it. Fixed seed: same files
every run."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))  # the shared numpy reader
import safetensors_np  # noqa: E402

HIDDEN, HEADS, FFN, LENGTH = 768, 12, 3072, 128
VOCAB, MAX_POSITIONS = 1024, 512
INIT_STD = 0.02  # BERT's initializer_range


def write(directory, calibration_sequences=16, eval_sequences=20, seed=0):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return (INIT_STD * rng.standard_normal(shape)).astype(np.float32)

    def layer_norm(name, width):
        return {name + ".weight": (1.0 + normal(width)).astype(np.float32), name + ".bias": normal(width)}

    def linear(name, out_features, in_features):
        return {name + ".weight": normal(out_features, in_features), name + ".bias": normal(out_features)}

    p = "encoder.layer.0."
    tensors = {"embeddings.word_embeddings.weight": normal(VOCAB, HIDDEN),
               "embeddings.position_embeddings.weight": normal(MAX_POSITIONS, HIDDEN),
               "embeddings.token_type_embeddings.weight": normal(2, HIDDEN),
               **layer_norm("embeddings.LayerNorm", HIDDEN)}
    for name in ("query", "key", "value"):
        tensors.update(linear(p + "attention.self." + name, HIDDEN, HIDDEN))
    tensors.update(linear(p + "attention.output.dense", HIDDEN, HIDDEN))
    tensors.update(layer_norm(p + "attention.output.LayerNorm", HIDDEN))
    tensors.update(linear(p + "intermediate.dense", FFN, HIDDEN))
    tensors.update(linear(p + "output.dense", HIDDEN, FFN))
    tensors.update(layer_norm(p + "output.LayerNorm", HIDDEN))
    safetensors_np.write(directory / "model.safetensors", tensors)
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": HIDDEN,
              "num_attention_heads": HEADS, "intermediate_size": FFN, "num_hidden_layers": 1,
              "vocab_size": VOCAB, "max_position_embeddings": MAX_POSITIONS, "type_vocab_size": 2,
              "hidden_act": "gelu", "layer_norm_eps": 1e-12}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name, count in (("calibration_ids.txt", calibration_sequences), ("eval_ids.txt", eval_sequences)):
        ids = rng.integers(1, VOCAB, size=(count, LENGTH))
        (directory / name).write_text("".join(" ".join(map(str, row)) + "\n" for row in ids))
    return directory
