#!/usr/bin/env python3
"""Writes the seed corpus of the safetensors fuzzer (tests/fuzz/corpus/): a few small valid files
and one file per kind of damage the reader must reject. tests/test_io.cpp replays every seed.

Usage: python3 tests/fuzz/make_corpus.py [out_dir=tests/fuzz/corpus]
"""
import json
import os
import struct
import sys


def pack(header, data=b"", pad=True, length=None):
    text = json.dumps(header, separators=(",", ":")).encode() if not isinstance(header, bytes) else header
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


F32_2x3 = struct.pack("<6f", 1, -2, 3.5, 0, 1e-3, -7)
seeds = {
    # valid
    "valid_f32_matrix": pack({"w": entry("F32", [2, 3], 0, 24)}, F32_2x3),
    "valid_mixed": pack({
        "__metadata__": {"format": "pt", "model": "tiny"},
        "a_f32": entry("F32", [2, 2], 0, 16), "b_i64": entry("I64", [1], 16, 24),
        "c_i32": entry("I32", [2], 24, 32), "d_f16": entry("F16", [3], 32, 38),
        "e_bf16": entry("BF16", [1, 1], 38, 40), "f_i8": entry("I8", [2, 2], 40, 44),
        "g_u8": entry("U8", [3], 44, 47), "h_bool": entry("BOOL", [1], 47, 48)},
        struct.pack("<4f", 1, 2, 3, 4) + struct.pack("<q", -5) + struct.pack("<2i", 7, -8)
        + struct.pack("<3H", 0x3C00, 0x0001, 0x7C00) + struct.pack("<H", 0x3F80)
        + bytes([0x80, 0x7F, 1, 2]) + bytes([0, 128, 255]) + bytes([1])),
    "valid_empty": pack({}),
    "valid_scalar_and_zero_size": pack({"s": entry("F64", [], 0, 8), "z": entry("F32", [0, 4], 8, 8)},
                                       struct.pack("<d", 2.5)),
    "valid_unpadded_unaligned": pack({"w": entry("F32", [3], 0, 12)}, struct.pack("<3f", 1, 2, 3), pad=False),
    "valid_hole": pack({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 4, 6)}, bytes(6)),
    # malformed
    "bad_short_file": b"\x08\x00\x00",
    "bad_length_past_end": pack({"w": entry("F32", [1], 0, 4)}, bytes(4), length=1 << 40),
    "bad_length_huge": struct.pack("<Q", 2**64 - 1) + b"{}",
    "bad_not_json": pack(b"{\"w\": [1, 2"),
    "bad_not_object": pack([1, 2, 3]),
    "bad_invalid_utf8": pack(b"{\"\xff\xfe\":{}}"),
    "bad_missing_dtype": pack({"w": {"shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
    "bad_dtype_type": pack({"w": entry(5, [1], 0, 4)}, bytes(4)),
    "bad_unknown_dtype": pack({"w": entry("F8_E4M3", [4], 0, 4)}, bytes(4)),
    "bad_unknown_field": pack({"w": dict(entry("U8", [4], 0, 4), extra=1)}, bytes(4)),
    "bad_negative_shape": pack({"w": entry("U8", [-1], 0, 4)}, bytes(4)),
    "bad_float_shape": pack({"w": entry("U8", [4.0], 0, 4)}, bytes(4)),
    "bad_shape_overflow": pack({"w": entry("F32", [2**62, 2**62], 0, 4)}, bytes(4)),
    "bad_offsets_past_end": pack({"w": entry("U8", [4], 4, 8)}, bytes(4)),
    "bad_offsets_reversed": pack({"w": entry("U8", [0], 4, 0)}, bytes(4)),
    "bad_offsets_arity": pack({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4, 8]}}, bytes(8)),
    "bad_size_mismatch": pack({"w": entry("F32", [2], 0, 4)}, bytes(8)),
    "bad_overlap": pack({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)),
    "bad_duplicate_name": pack(b"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                               b"\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", bytes(2)),
    "bad_metadata_value": pack({"__metadata__": {"n": 3}}),
    "bad_metadata_type": pack({"__metadata__": [1]}),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(out, exist_ok=True)
for name, content in seeds.items():
    with open(os.path.join(out, name + ".safetensors"), "wb") as f:
        f.write(content)
print(f"wrote {len(seeds)} seeds to {out}")
