#pragma once
/// @file
/// Umbrella header of the io component (CMake target qtx::io): safetensors reader and writer, and
/// BERT's WordPiece tokenizer. The safetensors headers parse JSON with nlohmann-json, which qtx::io
/// brings; the tokenizer alone (qtx/io/wordpiece.hpp) needs nothing beyond qtx::qtx.
#include "io/dtype.hpp"
#include "io/mapped_file.hpp"
#include "io/safetensors.hpp"
#include "io/safetensors_writer.hpp"
#include "io/wordpiece.hpp"
