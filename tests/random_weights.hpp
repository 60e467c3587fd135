#pragma once
// Random float tensors under Hugging Face names, for the example-model tests: drawn in the order they
// are added (so each test's values depend only on its seed and its add() sequence) and written as
// the model.safetensors the examples load.
#include <qtx/core/types.hpp>
#include <qtx/io/safetensors.hpp>

#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace test_models {

/// n values drawn from N(mean, stddev²), in order, from rng.
inline std::vector<float> normal_values(qtx::index_t n, float stddev, std::mt19937& rng, float mean = 0.0f) {
  std::normal_distribution<float> d(mean, stddev);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

struct random_weights {
  std::mt19937 rng;
  std::normal_distribution<float> normal{0.0f, 1.0f};
  std::map<std::string, std::vector<float>> w;
  std::map<std::string, std::vector<qtx::index_t>> shapes;

  explicit random_weights(unsigned seed) : rng(seed) {}

  // mean + stddev · N(0, 1) for every element.
  void add(const std::string& name, std::vector<qtx::index_t> shape, float stddev, float mean = 0.0f) {
    qtx::index_t count = 1;
    for (auto s : shape) count *= s;
    std::vector<float> v(static_cast<std::size_t>(count));
    for (auto& x : v) x = mean + stddev * normal(rng);
    w[name] = std::move(v);
    shapes[name] = std::move(shape);
  }

  // dir/model.safetensors (dir is created).
  void write(const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir);
    std::vector<qtx::io::tensor_data> tensors;
    for (const auto& [n, v] : w) tensors.push_back(qtx::io::make_tensor_data<float>(n, v, shapes.at(n)));
    qtx::io::write_safetensors(dir / "model.safetensors", tensors);
  }
};

}  // namespace test_models
