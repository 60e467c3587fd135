"""The ONNX Runtime peers of one BERT: the optimized FP32 graph and its two int8 quantizations.

  fp32     onnxruntime.transformers optimizer, model_type bert: EmbedLayerNormalization, Attention,
           SkipLayerNormalization, BiasGelu fused (the usual way to serve BERT on ORT).
  dynamic  quantize_dynamic on the fused model (int8 weights per channel, uint8 activations quantized
           per call from their runtime range: QAttention and DynamicQuantizeMatMul).
  static   quantize_static, QDQ, on every MatMul (weights int8 per channel, activations uint8 with
           ranges calibrated by min-max on the calibration sentences qtx uses; MatMul outputs stay
           float, which ORT runs as MatMulIntegerToFloat). Attention fusion is off for this model so
           that the Q/K/V projections and Q·Kᵀ, P·V are MatMuls and get quantized too, as in qtx's
           W8A8; the other fusions stay on.
"""
import logging

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)
from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
from onnxruntime.transformers import optimizer
from onnxruntime.transformers.fusion_options import FusionOptions

# The optimizer warns that the graph's producer is not PyTorch; the patterns are PyTorch's (bert_onnx).
logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)


def optimize(source, target, heads, hidden, fuse_attention=True):
    options = FusionOptions("bert")
    options.enable_attention = fuse_attention
    model = optimizer.optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden,
                                     optimization_options=options, opt_level=0)
    # ONNX's own shape inference knows no ORT contrib operator; the quantizers need every tensor typed.
    model.save_model_to_file(str(target))  # adds the com.microsoft opset import of the fused operators
    onnx.save(SymbolicShapeInference.infer_shapes(onnx.load(str(target)), auto_merge=True), str(target))
    return {op: n for op, n in model.get_fused_operator_statistics().items() if n}


def feeds(sequences):
    """Inputs of one padded batch: ids, mask 1 on real tokens, token types 0."""
    length = max(len(s) for s in sequences)
    ids = np.zeros((len(sequences), length), np.int64)
    mask = np.zeros_like(ids)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


class _sentences(CalibrationDataReader):
    def __init__(self, sequences):
        self.batches = iter([feeds([s]) for s in sequences])

    def get_next(self):
        return next(self.batches, None)


def quantize_int8_dynamic(fused, target):
    quantize_dynamic(str(fused), str(target), weight_type=QuantType.QInt8, per_channel=True)


def quantize_int8_static(unfused_attention, target, calibration):
    quantize_static(str(unfused_attention), str(target), _sentences(calibration), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul"], activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, per_channel=True)
