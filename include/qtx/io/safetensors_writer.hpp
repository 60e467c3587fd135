#pragma once
/// @file
/// safetensors writer: the layout the reference implementation produces, so its readers accept
/// qtx's files. The header is padded with spaces to a multiple of 8 bytes and tensors are laid out
/// without holes, widest element type first (then by name), so every tensor starts aligned to its
/// element size and the reader's zero-copy views work.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "dtype.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::io {

/// Size of the header-length prefix.
inline constexpr std::size_t safetensors_length_bytes = 8;  // little-endian u64 before the header
/// Largest header the format allows; bigger ones are rejected as malformed.
inline constexpr std::uint64_t safetensors_max_header_bytes = 100u << 20;  // the format's cap
/// The header key of the free-form string metadata (not a tensor).
inline constexpr std::string_view safetensors_metadata_key = "__metadata__";

/// Free-form string metadata of a safetensors file.
using metadata_map = std::map<std::string, std::string, std::less<>>;

/// One tensor to write; the bytes are borrowed and must outlive the call.
struct tensor_data {
  /// Tensor name (unique within the file).
  std::string name;
  /// Element type.
  dtype type = dtype::u8;
  /// Shape; empty for a scalar. Its element count times size_of(type) must equal bytes.size().
  std::vector<index_t> shape;
  /// The tensor's bytes, little-endian, borrowed.
  std::span<const std::byte> bytes;
};

/// A tensor_data over typed values, with the dtype deduced from T.
template <class T>
  requires has_dtype<T>
tensor_data make_tensor_data(std::string name, std::span<const T> values,
                             std::vector<index_t> shape) {
  return {std::move(name), dtype_of<T>, std::move(shape), std::as_bytes(values)};
}

namespace detail {

inline constexpr std::size_t safetensors_header_alignment = 8;

inline void check_tensor_data(const tensor_data& t, std::set<std::string_view>& seen) {
  constexpr const char* fn = "write_safetensors";
  check(t.name != safetensors_metadata_key, fn, ": '", safetensors_metadata_key,
        "' is reserved and cannot name a tensor");
  check(seen.insert(t.name).second, fn, ": tensor name '", t.name, "' given twice");
  index_t elements = 1;
  for (index_t extent : t.shape) {
    check(extent >= 0, fn, ": tensor '", t.name, "' has negative extent ", extent);
    check(extent == 0 || elements <= std::numeric_limits<index_t>::max() / extent, fn,
          ": tensor '", t.name, "' has too many elements");
    elements *= extent;
  }
  const index_t element_bytes = size_of(t.type);
  check(elements <= std::numeric_limits<index_t>::max() / element_bytes, fn, ": tensor '", t.name,
        "' has too many bytes");
  check(static_cast<index_t>(t.bytes.size()) == elements * element_bytes, fn, ": tensor '",
        t.name, "' has ", t.bytes.size(), " bytes but its shape and ", name(t.type), " need ",
        elements * element_bytes);
  check(t.bytes.data() != nullptr || t.bytes.empty(), fn, ": tensor '", t.name, "' has null data");
}

}  // namespace detail

/// The complete file contents: length, padded header, data section.
inline std::vector<std::byte> serialize_safetensors(std::span<const tensor_data> tensors,
                                                    const metadata_map& metadata = {}) {
  std::set<std::string_view> seen;
  for (const auto& t : tensors) detail::check_tensor_data(t, seen);

  std::vector<const tensor_data*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const tensor_data* a, const tensor_data* b) {
    if (size_of(a->type) != size_of(b->type)) return size_of(a->type) > size_of(b->type);
    return a->name < b->name;
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[std::string(safetensors_metadata_key)] = metadata;
  std::size_t offset = 0;
  for (const tensor_data* t : order) {
    header[t->name] = {{"dtype", name(t->type)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->bytes.size()}}};
    offset += t->bytes.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // a name or metadata string that is not UTF-8
    qtx::throw_error("write_safetensors: cannot encode the header: ", e.what());
  }
  const std::size_t padding = (detail::safetensors_header_alignment -
                               text.size() % detail::safetensors_header_alignment) %
                              detail::safetensors_header_alignment;
  text.append(padding, ' ');

  std::vector<std::byte> file;
  file.reserve(safetensors_length_bytes + text.size() + offset);
  const std::uint64_t header_bytes = text.size();
  for (std::size_t i = 0; i < safetensors_length_bytes; ++i)
    file.push_back(static_cast<std::byte>(header_bytes >> (8 * i)));
  for (char c : text) file.push_back(static_cast<std::byte>(c));
  for (const tensor_data* t : order) file.insert(file.end(), t->bytes.begin(), t->bytes.end());
  return file;
}

/// Writes tensors (and metadata) as a safetensors file that safetensors_file reads back.
/// @throws qtx::error for duplicate names, sizes that do not match shapes, or an unwritable path.
inline void write_safetensors(const std::filesystem::path& path,
                              std::span<const tensor_data> tensors,
                              const metadata_map& metadata = {}) {
  const std::vector<std::byte> file = serialize_safetensors(tensors, metadata);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  check(out.good(), "write_safetensors: cannot open '", path.string(), "' for writing");
  out.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  out.close();
  check(!out.fail(), "write_safetensors: writing '", path.string(), "' failed");
}

}  // namespace qtx::io
