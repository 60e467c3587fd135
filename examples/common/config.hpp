#pragma once
// A checkpoint's config.json, read one key at a time. The file is untrusted input: every value is
// checked for its JSON type and its range before a model uses it, and every refusal is a qtx::error
// naming the model, the file, the key and the value found. A key whose value is null counts as
// absent (Hugging Face writes null for unset options).
#include <qtx/core/error.hpp>
#include <qtx/core/types.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace demo {

// The largest size a config may state (vocabulary, width, positions, image side, ...): 2^20 keeps
// every product of two sizes, and of a size with a tensor's element count, inside index_t.
inline constexpr qtx::index_t max_config_extent = qtx::index_t(1) << 20;

class config_reader {
 public:
  // `text` is the contents of `source`; `model` ("bert") opens every error message.
  config_reader(std::string model, std::string_view text, std::string source = "config.json")
      : model_(std::move(model)), source_(std::move(source)) {
    try {
      json_ = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      fail("not valid JSON: ", e.what());
    }
    check(json_.is_object(), "the top level is ", json_.type_name(), ", not an object");
  }

  static config_reader from_file(std::string model, const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    qtx::check(in.good(), model, ": cannot open config '", path.string(), "'");
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    return config_reader(std::move(model), text, path.string());
  }

  const std::string& model() const { return model_; }

  // A required integer in [min, max_config_extent].
  qtx::index_t extent(const char* key, qtx::index_t min = 1) const {
    const nlohmann::json* v = find(key);
    check(v != nullptr, "no '", key, "'");
    return to_extent(key, *v, min);
  }
  qtx::index_t extent_or(const char* key, qtx::index_t fallback, qtx::index_t min = 1) const {
    const nlohmann::json* v = find(key);
    return v ? to_extent(key, *v, min) : fallback;
  }

  // A number that stays finite as float.
  float real_or(const char* key, float fallback) const {
    const nlohmann::json* v = find(key);
    return v ? to_real(key, *v) : fallback;
  }
  std::vector<float> reals_or(const char* key, std::vector<float> fallback) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback;
    check(v->is_array(), key, " must be an array of numbers, found ", shown(*v));
    std::vector<float> out;
    for (const auto& e : *v) out.push_back(to_real(key, e));
    return out;
  }

  bool flag_or(const char* key, bool fallback) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback;
    check(v->is_boolean(), key, " must be true or false, found ", shown(*v));
    return v->get<bool>();
  }

  std::string text_or(const char* key, std::string fallback) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback;
    check(v->is_string(), key, " must be a string, found ", shown(*v));
    return v->get<std::string>();
  }

  // qtx::check with the "model: file: " prefix.
  template <class... Parts>
  void check(bool condition, const Parts&... parts) const {
    if (!condition) fail(parts...);
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    qtx::throw_error(model_, ": ", source_, ": ", parts...);
  }

  const nlohmann::json* find(const char* key) const {
    const auto it = json_.find(key);
    return it == json_.end() || it->is_null() ? nullptr : &*it;
  }

  // The value as the message shows it: its JSON text, cut short.
  static std::string shown(const nlohmann::json& v) {
    constexpr std::size_t longest = 40;
    std::string text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (text.size() > longest) text = text.substr(0, longest) + "...";
    return text;
  }

  qtx::index_t to_extent(const char* key, const nlohmann::json& v, qtx::index_t min) const {
    check(v.is_number_integer(), key, " must be an integer, found ", shown(v));
    // Compare before converting: an unsigned value past int64 must not wrap to a negative one.
    const bool in_range = v.is_number_unsigned()
                              ? v.get<std::uint64_t>() <= std::uint64_t(max_config_extent) &&
                                    v.get<std::int64_t>() >= min
                              : v.get<std::int64_t>() >= min && v.get<std::int64_t>() <= max_config_extent;
    check(in_range, key, " (", shown(v), ") must lie in [", min, ", ", max_config_extent, "]");
    return v.get<qtx::index_t>();
  }

  float to_real(const char* key, const nlohmann::json& v) const {
    check(v.is_number(), key, " must be a number, found ", shown(v));
    const double d = v.get<double>();
    check(std::isfinite(d) && std::abs(d) <= double(std::numeric_limits<float>::max()), key, " (",
          shown(v), ") must be a finite float");
    return static_cast<float>(d);
  }

  std::string model_, source_;
  nlohmann::json json_;
};

}  // namespace demo
