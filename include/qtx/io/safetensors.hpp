#pragma once
/// @file
/// safetensors reader. The format (huggingface/safetensors):
///
///   [8 bytes: N, little-endian u64][N bytes: JSON header][data section]
///   header = { "__metadata__": {"key": "value", ...},                (optional, strings only)
///              "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...],
///                                "data_offsets": [begin, end]}, ... }
///
/// Offsets are relative to the data section. A file is untrusted input: every length, offset,
/// dtype and shape is checked against the file before any tensor byte is exposed, and every
/// inconsistency throws qtx::error naming the source and the tensor (never a crash, never an
/// out-of-bounds read). Holes between tensors are allowed; overlaps are not.
/// The writer, and the format constants, are in safetensors_writer.hpp (included here).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/view.hpp"
#include "dtype.hpp"
#include "mapped_file.hpp"
#include "safetensors_writer.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::io {

/// One tensor of a safetensors file: dtype, shape and its bytes inside the mapping (not copied).
struct tensor_info {
  /// Element type as declared in the header.
  dtype type = dtype::u8;
  std::vector<index_t> shape;        ///< empty for a scalar
  std::span<const std::byte> bytes;  ///< exactly numel() · size_of(type) bytes inside the file

  /// Number of dimensions (0 for a scalar).
  index_t rank() const { return static_cast<index_t>(shape.size()); }
  /// Number of elements (1 for a scalar).
  index_t numel() const {
    index_t n = 1;
    for (index_t d : shape) n *= d;  // cannot overflow: checked when the header was read
    return n;
  }
};

/// A parsed, validated safetensors file: every tensor's header entry is checked against the file
/// (offsets in range, no overlap, sizes that match the dtype and shape) before anything is returned.
class safetensors_file {
 public:
  /// Tensors by name; transparent comparison so string_views look up without allocating.
  using tensor_map = std::map<std::string, tensor_info, std::less<>>;

  /// Maps the file read-only; the tensors' bytes point into the mapping.
  static safetensors_file open(const std::filesystem::path& path) {
    safetensors_file file;
    file.mapping_ = mapped_file(path);
    file.parse(file.mapping_.bytes(), path.string());
    return file;
  }
  /// Parses a copy of `bytes` (fuzzing, in-memory round trips).
  static safetensors_file from_bytes(std::span<const std::byte> bytes) {
    safetensors_file file;
    file.owned_.assign(bytes.begin(), bytes.end());
    file.parse(file.owned_, "<memory>");
    return file;
  }

  /// Moves the mapping; tensor views stay valid (they point into the mapping, not into this object).
  safetensors_file(safetensors_file&&) noexcept = default;
  /// Moves the mapping; tensor views stay valid.
  safetensors_file& operator=(safetensors_file&&) noexcept = default;
  safetensors_file(const safetensors_file&) = delete;
  safetensors_file& operator=(const safetensors_file&) = delete;

  /// The path read (or "<memory>"), as error messages name it.
  const std::string& source() const { return source_; }
  /// Every tensor, by name.
  const tensor_map& tensors() const { return tensors_; }  // by name
  /// The header's __metadata__ strings.
  const metadata_map& metadata() const { return metadata_; }
  /// Number of tensors.
  index_t size() const { return static_cast<index_t>(tensors_.size()); }
  /// True when a tensor of that name exists.
  bool contains(std::string_view name) const { return tensors_.find(name) != tensors_.end(); }

  /// The tensor of that name. @throws qtx::error naming the file and the tensor when it is absent.
  const tensor_info& at(std::string_view name) const {
    const auto it = tensors_.find(name);
    check(it != tensors_.end(), "safetensors: ", source_, ": no tensor named '", name, "'");
    return it->second;
  }

  /// Zero-copy typed access; the dtype must be exactly T's and the data aligned for T (files from
  /// the common writers are, since they pad the header to 8 bytes).
  template <class T>
    requires has_dtype<T>
  std::span<const T> values(std::string_view name) const {
    const tensor_info& t = at(name);
    check(t.type == dtype_of<T>, "safetensors: ", source_, ": tensor '", name, "' is ",
          io::name(t.type), ", not ", io::name(dtype_of<T>));
    const auto address = reinterpret_cast<std::uintptr_t>(t.bytes.data());
    check(address % alignof(T) == 0, "safetensors: ", source_, ": tensor '", name,
          "' is not aligned to ", alignof(T), " bytes in the file (copy it with to_float)");
    return {reinterpret_cast<const T*>(t.bytes.data()), static_cast<std::size_t>(t.numel())};
  }

  /// A 2-D tensor as a row-major (shape[0] × shape[1]) view, zero-copy.
  template <class T>
    requires has_dtype<T>
  matrix_view<const T> matrix(std::string_view name) const {
    const tensor_info& t = at(name);
    check(t.rank() == 2, "safetensors: ", source_, ": tensor '", name, "' has rank ", t.rank(),
          ", a matrix needs rank 2");
    const std::span<const T> v = values<T>(name);
    return {v.data(), t.shape[0], t.shape[1], t.shape[1], 1};
  }

  /// Any floating tensor (F16, BF16, F32, F64) converted to float, in a fresh buffer.
  aligned_buffer<float> to_float(std::string_view name) const {
    aligned_buffer<float> out(at(name).numel());
    to_float(name, std::span<float>(out.data(), std::size_t(out.size())));
    return out;
  }

  /// to_float() into the caller's memory (a NumPy array, say) of exactly numel() elements.
  void to_float(std::string_view name, std::span<float> out) const {
    const tensor_info& t = at(name);
    check(is_floating(t.type), "safetensors: ", source_, ": to_float: tensor '", name, "' is ",
          io::name(t.type), ", not a floating type");
    check(index_t(out.size()) == t.numel(), "safetensors: ", source_, ": to_float: tensor '", name, "' has ",
          t.numel(), " elements, the destination ", out.size());
    const std::byte* src = t.bytes.data();
    for (index_t i = 0; i < t.numel(); ++i) out[std::size_t(i)] = load_as_float(t.type, src, i);
  }

 private:
  safetensors_file() = default;

  template <class Bits>
  static Bits load(const std::byte* src, index_t i) {  // memcpy: the file may be unaligned
    Bits bits;
    std::memcpy(&bits, src + i * static_cast<index_t>(sizeof(Bits)), sizeof(Bits));
    return bits;
  }
  static float load_as_float(dtype t, const std::byte* src, index_t i) {
    switch (t) {
      case dtype::f16: return f16_to_float(load<std::uint16_t>(src, i));
      case dtype::bf16: return bf16_to_float(load<std::uint16_t>(src, i));
      case dtype::f64: return static_cast<float>(load<double>(src, i));
      default: return load<float>(src, i);
    }
  }

  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    qtx::throw_error("safetensors: ", source_, ": ", parts...);
  }

  void parse(std::span<const std::byte> file, std::string source) {
    source_ = std::move(source);
    if (file.size() < safetensors_length_bytes)
      fail("file of ", file.size(), " bytes is shorter than the ", safetensors_length_bytes,
           "-byte header length");
    std::uint64_t header_bytes = 0;
    for (std::size_t i = 0; i < safetensors_length_bytes; ++i)  // little-endian on any host
      header_bytes |= static_cast<std::uint64_t>(file[i]) << (8 * i);
    const std::size_t after_length = file.size() - safetensors_length_bytes;
    if (header_bytes > after_length)
      fail("header length ", header_bytes, " exceeds the ", after_length, " bytes that follow it");
    if (header_bytes > safetensors_max_header_bytes)
      fail("header length ", header_bytes, " exceeds the format's limit of ",
           safetensors_max_header_bytes);
    const auto header = file.subspan(safetensors_length_bytes, header_bytes);
    const auto data = file.subspan(safetensors_length_bytes + header_bytes);

    const nlohmann::json root = parse_json(header);
    if (!root.is_object()) fail("header is JSON but not an object (", root.type_name(), ")");
    for (const auto& [key, value] : root.items()) {
      if (key == safetensors_metadata_key)
        read_metadata(value);
      else
        tensors_.emplace(key, read_tensor(key, value, data));
    }
    check_no_overlap();
  }

  /// JSON parse that also rejects duplicate keys (nlohmann would silently keep the last one).
  nlohmann::json parse_json(std::span<const std::byte> header) const {
    const auto* text = reinterpret_cast<const char*>(header.data());
    std::vector<std::vector<std::string>> keys_per_object;  // one entry per open object
    std::string duplicate;
    const auto reject_duplicates = [&](int, nlohmann::json::parse_event_t event,
                                       nlohmann::json& parsed) {
      using event_t = nlohmann::json::parse_event_t;
      if (event == event_t::object_start) keys_per_object.emplace_back();
      if (event == event_t::object_end && !keys_per_object.empty()) keys_per_object.pop_back();
      if (event == event_t::key && !keys_per_object.empty() && duplicate.empty()) {
        auto& keys = keys_per_object.back();
        const auto& key = parsed.get_ref<const std::string&>();
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) duplicate = key;
        keys.push_back(key);
      }
      return true;
    };
    nlohmann::json root;
    try {
      root = nlohmann::json::parse(text, text + header.size(), reject_duplicates);
    } catch (const nlohmann::json::exception& e) {
      fail("header is not valid JSON: ", e.what());
    }
    if (!duplicate.empty()) fail("header has the key '", duplicate, "' twice in one object");
    return root;
  }

  void read_metadata(const nlohmann::json& value) {
    if (!value.is_object())
      fail("'", safetensors_metadata_key, "' must be an object, not ", value.type_name());
    for (const auto& [key, entry] : value.items()) {
      if (!entry.is_string())
        fail("metadata '", key, "' must be a string, not ", entry.type_name());
      metadata_.emplace(key, entry.get<std::string>());
    }
  }

  index_t read_count(const std::string& name, const char* field, const nlohmann::json& v) const {
    if (!v.is_number_unsigned())
      fail("tensor '", name, "': ", field, " entries must be non-negative integers, found ",
           v.dump());
    const auto n = v.get<std::uint64_t>();
    if (n > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()))
      fail("tensor '", name, "': ", field, " entry ", n, " is too large");
    return static_cast<index_t>(n);
  }

  tensor_info read_tensor(const std::string& name, const nlohmann::json& entry,
                          std::span<const std::byte> data) const {
    if (!entry.is_object()) fail("tensor '", name, "' must be an object, not ", entry.type_name());
    for (const auto& [field, unused] : entry.items())
      if (field != "dtype" && field != "shape" && field != "data_offsets")
        fail("tensor '", name, "': unknown field '", field, "'");
    const auto field = [&](const char* key) -> const nlohmann::json& {
      const auto it = entry.find(key);
      if (it == entry.end()) fail("tensor '", name, "' has no '", key, "'");
      return *it;
    };

    tensor_info t;
    const auto& type = field("dtype");
    if (!type.is_string()) fail("tensor '", name, "': dtype must be a string, found ", type.dump());
    const auto parsed = parse_dtype(type.get_ref<const std::string&>());
    if (!parsed) fail("tensor '", name, "': unsupported dtype ", type.dump());
    t.type = *parsed;
    const index_t element_bytes = size_of(t.type);

    const auto& shape = field("shape");
    if (!shape.is_array()) fail("tensor '", name, "': shape must be an array, found ", shape.dump());
    // numel · element_bytes must fit index_t; a zero extent makes any later extent harmless.
    const index_t max_elements = std::numeric_limits<index_t>::max() / element_bytes;
    index_t elements = 1;
    for (const auto& extent_json : shape) {
      const index_t extent = read_count(name, "shape", extent_json);
      if (extent != 0 && elements > max_elements / extent)
        fail("tensor '", name, "': shape ", shape.dump(), " has too many elements");
      elements *= extent;
      t.shape.push_back(extent);
    }

    const auto& offsets = field("data_offsets");
    if (!offsets.is_array() || offsets.size() != 2)
      fail("tensor '", name, "': data_offsets must be [begin, end], found ", offsets.dump());
    const index_t begin = read_count(name, "data_offsets", offsets[0]);
    const index_t end = read_count(name, "data_offsets", offsets[1]);
    const auto data_size = static_cast<index_t>(data.size());
    if (begin > end) fail("tensor '", name, "': data_offsets begin ", begin, " > end ", end);
    if (end > data_size)
      fail("tensor '", name, "': data_offsets end ", end, " is past the data section of ",
           data_size, " bytes");
    if (end - begin != elements * element_bytes)
      fail("tensor '", name, "': ", end - begin, " bytes for shape ", shape.dump(), " of ",
           io::name(t.type), " (needs ", elements * element_bytes, ")");
    t.bytes = data.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
    return t;
  }

  void check_no_overlap() const {
    std::vector<std::pair<const std::byte*, const std::string*>> starts;
    for (const auto& [name, t] : tensors_)
      if (!t.bytes.empty()) starts.emplace_back(t.bytes.data(), &name);
    std::sort(starts.begin(), starts.end());
    for (std::size_t i = 1; i < starts.size(); ++i) {
      const tensor_info& previous = tensors_.find(*starts[i - 1].second)->second;
      if (previous.bytes.data() + previous.bytes.size() > starts[i].first)
        fail("tensors '", *starts[i - 1].second, "' and '", *starts[i].second, "' overlap");
    }
  }

  mapped_file mapping_;
  std::vector<std::byte> owned_;
  std::string source_;
  tensor_map tensors_;
  metadata_map metadata_;
};

}  // namespace qtx::io

