#pragma once
// A checkpoint's model.safetensors as float tensors of checked shapes. The loaders state every
// tensor's expected shape in the sizes of config.json, so a checkpoint whose tensors disagree with
// its config is refused with a qtx::error naming the tensor, both shapes and the config keys
// (never an out-of-bounds read later, in the forward pass).
#include <qtx/core/buffer.hpp>
#include <qtx/core/error.hpp>
#include <qtx/core/view.hpp>
#include <qtx/io/safetensors.hpp>
#include <qtx/nn/attention.hpp>

#include <array>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace demo {

// One expected extent and where it comes from ("hidden_size", "num_attention_heads", "1").
struct dim {
  qtx::index_t size;
  const char* meaning;
};

// Weights as float, whatever their dtype in the file (F32, F16, BF16, F64), kept for the model's life.
class weight_store {
 public:
  weight_store(std::string model, const std::filesystem::path& file)
      : model_(std::move(model)), file_(qtx::io::safetensors_file::open(file)) {}

  const std::string& model() const { return model_; }
  bool contains(const std::string& name) const { return file_.contains(name); }

  // Extent `axis` of a tensor's shape, for the sizes a config does not state (a classifier's classes).
  qtx::index_t extent(const std::string& name, std::size_t axis) const {
    qtx::check(file_.contains(name), model_, ": ", file_.source(), ": no tensor '", name, "'");
    const auto& shape = file_.at(name).shape;
    qtx::check(axis < shape.size(), model_, ": ", file_.source(), ": tensor '", name, "' has rank ", shape.size(),
               ", expected at least ", axis + 1);
    return shape[axis];
  }

  // The tensor's values, checked to have exactly `shape`.
  std::span<const float> tensor(const std::string& name, std::initializer_list<dim> shape) {
    check_shape(name, std::vector<dim>(shape));
    const auto& b = load(name);
    return {b.data(), std::size_t(b.size())};
  }
  std::span<const float> vector(const std::string& name, dim n) { return tensor(name, {n}); }
  qtx::matrix_view<const float> matrix(const std::string& name, dim rows, dim cols) {
    return qtx::make_view(tensor(name, {rows, cols}).data(), rows.size, cols.size);
  }

 private:
  void check_shape(const std::string& name, const std::vector<dim>& expected) const {
    qtx::check(file_.contains(name), model_, ": ", file_.source(), ": no tensor '", name, "'");
    const auto& actual = file_.at(name).shape;
    bool same = actual.size() == expected.size();
    for (std::size_t i = 0; same && i < actual.size(); ++i) same = actual[i] == expected[i].size;
    if (same) return;
    std::ostringstream got, want, meaning;
    for (std::size_t i = 0; i < actual.size(); ++i) got << (i ? ", " : "") << actual[i];
    for (std::size_t i = 0; i < expected.size(); ++i) {
      want << (i ? ", " : "") << expected[i].size;
      meaning << (i ? " x " : "") << expected[i].meaning;
    }
    qtx::throw_error(model_, ": ", file_.source(), ": tensor '", name, "' has shape [", got.str(),
                     "], config.json says [", want.str(), "] (", meaning.str(), ")");
  }

  const qtx::aligned_buffer<float>& load(const std::string& name) {
    auto it = cache_.find(name);
    if (it == cache_.end()) it = cache_.emplace(name, file_.to_float(name)).first;
    return it->second;
  }

  std::string model_;
  qtx::io::safetensors_file file_;
  std::map<std::string, qtx::aligned_buffer<float>> cache_;
};

// The four attention projections "<prefix><name>.weight" (hidden × hidden) and ".bias" (hidden),
// names in the order query, key, value, output.
inline qtx::nn::attention_weights load_attention_weights(weight_store& w, const std::string& prefix,
                                                         const std::array<const char*, 4>& names, dim hidden) {
  const auto weight = [&](int i) { return w.matrix(prefix + names[i] + ".weight", hidden, hidden); };
  const auto bias = [&](int i) { return w.vector(prefix + names[i] + ".bias", hidden); };
  return {weight(0), weight(1), weight(2), weight(3), bias(0), bias(1), bias(2), bias(3)};
}

}  // namespace demo
