// ViT demo: Fashion-MNIST test accuracy FP32 vs W8A8, with the paper's outlier statistics.
//
//   vit MODEL_DIR DATA_DIR [--images N] [--calibration N] [--out DIR]
//   vit --help
//
// MODEL_DIR: model.safetensors (Hugging Face ViTForImageClassification names) and config.json
// (tools/train/vit_fmnist.py). DATA_DIR: the uncompressed IDX files t10k-images-idx3-ubyte,
// t10k-labels-idx1-ubyte and train-images-idx3-ubyte (gunzip -k of /usr/share/datasets/fashion-mnist).
// Activation ranges: running min-max over `calibration` training images (every 60000/N-th); the
// test set is the first `images` test images. Outlier statistics are measured at every layer's
// output (the residual stream after the FFN) on the calibration images.
#include "../common/cli.hpp"
#include "../common/demo.hpp"
#include "vit.hpp"

#include <qtx/quant/observers.hpp>
#include <qtx/quant/outlier_stats.hpp>

#include <cstdio>
#include <fstream>

namespace {

using qtx::index_t;

// IDX files: big-endian magic (0x0801 labels / 0x0803 images), dimensions, then bytes.
struct idx_file {
  std::vector<index_t> dims;
  std::vector<uint8_t> data;
};

idx_file read_idx(const std::filesystem::path& path, int expected_rank) {
  std::ifstream in(path, std::ios::binary);
  qtx::check(in.good(), "vit: cannot open '", path.string(), "' (gunzip -k the Fashion-MNIST files into DATA_DIR)");
  auto u32 = [&] {
    unsigned char b[4] = {};
    in.read(reinterpret_cast<char*>(b), 4);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
  };
  constexpr uint32_t ubyte_type = 0x0800;
  const uint32_t magic = u32();
  qtx::check(in.good() && magic == (ubyte_type | uint32_t(expected_rank)), "vit: '", path.string(),
             "' is not an IDX file of rank ", expected_rank);
  idx_file f;
  std::size_t count = 1;
  for (int d = 0; d < expected_rank; ++d) {
    f.dims.push_back(index_t(u32()));
    count *= std::size_t(f.dims.back());
  }
  f.data.resize(count);
  in.read(reinterpret_cast<char*>(f.data.data()), std::streamsize(count));
  qtx::check(in.gcount() == std::streamsize(count), "vit: '", path.string(), "' is truncated");
  return f;
}

}  // namespace

int main(int argc, char** argv) try {
  std::filesystem::path model_dir, data_dir, out_dir = "vit_out";
  index_t images = 1000, calibration = 256;
  CLI::App app{"qtx ViT demo: Fashion-MNIST top-1 accuracy FP32 vs W8A8, outlier statistics.", "vit"};
  demo::add_directory(app, "MODEL_DIR", model_dir, "model.safetensors, config.json");
  demo::add_directory(app, "DATA_DIR", data_dir, "uncompressed Fashion-MNIST IDX files");
  demo::add_count(app, "--images", images, "test images");
  demo::add_count(app, "--calibration", calibration, "calibration images (running min-max)");
  app.add_option("--out", out_dir, "output folder")->capture_default_str();
  demo::parse_or_exit(app, argc, argv);
  std::filesystem::create_directories(out_dir);
  vit::model<> model(model_dir);
  const auto& cfg = model.cfg();
  std::printf("qtx ViT: %ld layers, hidden %ld, %ld heads, %ld tokens, gamma %g, gate %s, patch LN %s, backend %s\n",
              long(cfg.layers), long(cfg.hidden), long(cfg.heads), long(cfg.tokens()), cfg.gamma, cfg.gate.c_str(),
              cfg.patch_embedding_ln ? "yes" : "no", qtx::cpu::native::name());
  const auto train = read_idx(data_dir / "train-images-idx3-ubyte", 3);
  const auto test = read_idx(data_dir / "t10k-images-idx3-ubyte", 3);
  const auto labels = read_idx(data_dir / "t10k-labels-idx1-ubyte", 1);
  const index_t pixels = cfg.channels * cfg.image_size * cfg.image_size;
  qtx::check(train.dims[1] * train.dims[2] == pixels && test.dims[1] * test.dims[2] == pixels, "vit: images are ",
             test.dims[1], "x", test.dims[2], ", the model takes ", cfg.image_size, "x", cfg.image_size);
  auto picture = [&](const idx_file& f, index_t i) { return vit::image(f.data.data() + i * pixels, std::size_t(pixels)); };

  // 1. FP32 on training images: running min-max ranges and outlier statistics per layer.
  const index_t L = cfg.layers;
  std::array<qtx::running_minmax_observer, 2> model_observers;
  std::vector<std::array<qtx::running_minmax_observer, vit::points>> observers(L);
  std::vector<qtx::outlier_stats> stats(L);
  demo::outlier_locations locations(L);
  const vit::model<>::observer record = [&](index_t layer, int point, qtx::matrix_view<const float> t) {
    if (layer < 0) return model_observers[point].observe(t);
    observers[layer][point].observe(t);
    if (point == vit::ffn_residual) stats[layer].add_sequence(t), locations.add_sequence(layer, t);
  };
  const index_t calibration_stride = std::max<index_t>(1, train.dims[0] / calibration);
  {
    demo::progress bar("calibrating (FP32)", calibration);
    for (index_t i = 0; i < calibration; ++i) {
      model.forward(picture(train, (i * calibration_stride) % train.dims[0]), &record);
      bar.tick();
    }
  }
  vit::calibration cal;
  cal.pixels = model_observers[vit::model<>::pixels_point].params<uint8_t>();
  cal.embeddings = model_observers[vit::model<>::embeddings_point].params<uint8_t>();
  for (index_t i = 0; i < L; ++i) {
    cal.layers.emplace_back();
    for (int p = 0; p < vit::points; ++p) cal.layers[i][p] = observers[i][p].params<uint8_t>();
  }
  model.quantize(cal);

  // 2. Test accuracy FP32 vs W8A8.
  images = std::min(images, test.dims[0]);
  index_t correct_fp32 = 0, correct_w8a8 = 0, agree = 0;
  {
    demo::progress bar("test FP32 vs W8A8", images);
    for (index_t i = 0; i < images; ++i) {
      const index_t a = vit::argmax(model.forward(picture(test, i))), b = vit::argmax(model.forward_w8a8(picture(test, i)));
      correct_fp32 += a == labels.data[i];
      correct_w8a8 += b == labels.data[i];
      agree += a == b;
      bar.tick();
    }
  }
  std::printf("\nOutlier statistics of the FP32 model (layer outputs, %ld calibration images):\n", long(calibration));
  const auto outliers = demo::report_layer_stats(stats, out_dir / "layer_stats.csv");
  locations.print();
  const double acc_fp32 = 100.0 * double(correct_fp32) / double(images), acc_w8a8 = 100.0 * double(correct_w8a8) / double(images);
  std::printf("\nTop-1 accuracy over %ld test images: FP32 %.2f %%, W8A8 %.2f %% (predictions agree on %.2f %%); "
              "max inf-norm %.2f, avg kurtosis %.1f\n",
              long(images), acc_fp32, acc_w8a8, 100.0 * double(agree) / double(images), outliers.max_inf_norm,
              outliers.avg_kurtosis);
  std::ofstream(out_dir / "summary.json") << "{\"metric\": \"top1_accuracy\", \"fp32\": " << acc_fp32
                                          << ", \"w8a8\": " << acc_w8a8 << ", \"max_inf_norm\": " << outliers.max_inf_norm
                                          << ", \"avg_kurtosis\": " << outliers.avg_kurtosis << ", \"images\": " << images << "}\n";
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "vit: %s\n", e.what());
  return 1;
}
