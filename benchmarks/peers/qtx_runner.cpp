// The BERT example's model in C++ on id files: tokenizes the demo's sentences for the peer benchmark
// (benchmarks/peers/run.sh, whose qtx side runs in-process through the Python package), and times the
// model on the same ids as the C++ baseline of python/bench/model_latency.py.
//
//   qtx_peers_runner tokenize MODEL_DIR TEXT_DIR OUT_DIR [--heldout N] [--calibration N]
//     writes OUT_DIR/calibration_ids.txt and heldout_ids.txt: the BERT demo's own sentences
//     (every 7th calibration line, the first held-out lines), tokenized by qtx's WordPiece.
//   qtx_peers_runner run MODEL_DIR CALIBRATION_IDS EVAL_IDS OUT_DIR [--repeats R] [--warmup W] [--batch B]
//                    [--weight-bits 8|7] [--mode M]
//     calibrates W8A8 (weights on 8 or 7 bits; activation mode M of demo::w8a8_modes: 0 the paper's
//     static points, 1 a float residual stream, 2 dynamic per tensor, 3 dynamic per token, 4 and 5
//     static and per token with smoothing) on
//     CALIBRATION_IDS, then runs FP32 and W8A8 on every
//     EVAL_IDS sequence, R times (the two precisions alternate per pass, so machine noise hits both), one sequence per
//     forward (B = 1) or B per forward: sorted by length like the ORT side's batches, but packed
//     back to back without padding (qtx::nn::packed_sequences). Writes
//     OUT_DIR/{fp32,w8a8}_embeddings.npy (sequences x hidden, mean-pooled, L2-normalised, last pass,
//     in EVAL_IDS order), {fp32,w8a8}_seconds.npy (wall clock, passes x forward calls) and
//     {fp32,w8a8}_cpu_seconds.npy (the thread's CPU time: what a shared machine's load hides least).
//
// Id files: one sequence a line, token ids separated by spaces. Threads: OMP_NUM_THREADS.
#include "../../examples/bert/bert.hpp"
#include "../../examples/common/demo.hpp"
#include "../../examples/common/w8a8.hpp"

#include <qtx/quant/observers.hpp>

#include <chrono>
#include <span>
#include <ctime>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace {

using qtx::index_t;
using ids_t = std::vector<qtx::io::token_id>;
namespace fs = std::filesystem;

// The BERT demo's text selection (examples/bert/main.cpp): same sentences, same ids.
constexpr index_t demo_max_tokens = 128, demo_calibration_stride = 7;

// Flags "--name value" after the positional arguments; unknown flags are errors.
struct flags {
  std::vector<std::pair<std::string, index_t>> values;
  index_t get(const std::string& name) const {
    for (const auto& [n, v] : values)
      if (n == name) return v;
    return -1;
  }
};

flags parse_flags(int argc, char** argv, int first, std::vector<std::pair<std::string, index_t>> defaults) {
  flags f{std::move(defaults)};
  for (int i = first; i < argc; i += 2) {
    const std::string name = argv[i];
    qtx::check(i + 1 < argc, "qtx_peers_runner: flag ", name, " needs a value");
    bool known = false;
    for (auto& [n, v] : f.values)
      if ("--" + n == name) {
        v = std::stol(argv[i + 1]);
        qtx::check(v >= 0, "qtx_peers_runner: ", name, " (", v, ") must be non-negative");
        known = true;
      }
    qtx::check(known, "qtx_peers_runner: unknown flag ", name);
  }
  return f;
}

std::vector<ids_t> read_ids(const fs::path& path) {
  std::ifstream in(path);
  qtx::check(in.good(), "qtx_peers_runner: cannot open id file '", path.string(), "'");
  std::vector<ids_t> rows;
  for (std::string line; std::getline(in, line);) {
    std::istringstream s(line);
    ids_t ids;
    for (long id; s >> id;) ids.push_back(qtx::io::token_id(id));
    qtx::check(s.eof(), "qtx_peers_runner: '", path.string(), "' line ", rows.size() + 1, " is not a list of ids");
    if (!ids.empty()) rows.push_back(std::move(ids));
  }
  qtx::check(!rows.empty(), "qtx_peers_runner: id file '", path.string(), "' has no sequence");
  return rows;
}

// A little-endian float32 / float64 matrix in NumPy's .npy format (version 1.0).
template <class T>
void write_npy(const fs::path& path, const std::vector<std::vector<T>>& rows) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  const std::size_t cols = rows.empty() ? 0 : rows[0].size();
  std::string header = std::string("{'descr': '<f") + char('0' + sizeof(T)) +
                       "', 'fortran_order': False, 'shape': (" + std::to_string(rows.size()) + ", " +
                       std::to_string(cols) + "), }";
  const std::size_t preamble = 10;  // magic, version, header length
  header.append(63 - (preamble + header.size()) % 64, ' ').push_back('\n');
  std::ofstream out(path, std::ios::binary);
  qtx::check(out.good(), "qtx_peers_runner: cannot write '", path.string(), "'");
  const auto length = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(char(length & 0xff)).put(char(length >> 8));
  out << header;
  for (const auto& r : rows) {
    qtx::check(r.size() == cols, "qtx_peers_runner: ragged matrix for '", path.string(), "'");
    out.write(reinterpret_cast<const char*>(r.data()), std::streamsize(r.size() * sizeof(T)));
  }
}

int tokenize(int argc, char** argv) {
  qtx::check(argc >= 5, "qtx_peers_runner tokenize: needs MODEL_DIR TEXT_DIR OUT_DIR");
  const fs::path model_dir = argv[2], text_dir = argv[3], out_dir = argv[4];
  const auto f = parse_flags(argc, argv, 5, {{"heldout", 1000}, {"calibration", 256}});
  qtx::check(f.get("heldout") > 0 && f.get("calibration") > 0, "qtx_peers_runner tokenize: --heldout (",
             f.get("heldout"), ") and --calibration (", f.get("calibration"), ") must be positive");
  const auto tok = qtx::io::wordpiece_tokenizer::from_file(model_dir / "vocab.txt");
  auto encode_all = [&](const fs::path& file, index_t count, index_t stride) {
    std::vector<ids_t> out;
    for (const auto& t : demo::read_lines(file, count, stride)) out.push_back(tok.encode(t, demo_max_tokens));
    return out;
  };
  fs::create_directories(out_dir);
  demo::write_matrix(out_dir / "calibration_ids.txt",
                     encode_all(text_dir / "sotu_calibration.txt", f.get("calibration"), demo_calibration_stride));
  demo::write_matrix(out_dir / "heldout_ids.txt", encode_all(text_dir / "sotu_heldout.txt", f.get("heldout"), 1));
  return 0;
}

// The demo's calibration (bert::calibration_recorder) of the FP32 forward over `sequences`.
bert::calibration calibrate(const bert::model<>& model, const std::vector<ids_t>& sequences) {
  bert::calibration_recorder recorder(model.cfg().layers);
  const bert::model<>::observer record = [&](index_t layer, int point, qtx::matrix_view<const float> t) {
    recorder(layer, point, t);
  };
  qtx::aligned_buffer<float> hidden;
  for (const auto& ids : sequences) model.forward(ids, hidden, &record);
  return recorder.result();
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

struct measurement {
  std::vector<std::vector<float>> embeddings;
  std::vector<std::vector<double>> seconds, cpu_seconds;  // passes x sequences
};

int run(int argc, char** argv) {
  qtx::check(argc >= 6, "qtx_peers_runner run: needs MODEL_DIR CALIBRATION_IDS EVAL_IDS OUT_DIR");
  const fs::path model_dir = argv[2], calibration_ids = argv[3], eval_ids = argv[4], out_dir = argv[5];
  const auto f = parse_flags(argc, argv, 6,
                             {{"repeats", 3}, {"warmup", 20}, {"batch", 1}, {"weight-bits", 8}, {"mode", 0}});
  qtx::check(f.get("batch") > 0 && f.get("repeats") > 0, "qtx_peers_runner: --batch (", f.get("batch"),
             ") and --repeats (", f.get("repeats"), ") must be positive");
  qtx::check(f.get("weight-bits") >= 2 && f.get("weight-bits") <= 8, "qtx_peers_runner: --weight-bits (", f.get("weight-bits"), ") must be 2..8");
  const auto modes = demo::w8a8_modes(int(f.get("weight-bits")));
  qtx::check(f.get("mode") >= 0 && f.get("mode") < index_t(modes.size()), "qtx_peers_runner: --mode (", f.get("mode"),
             ") must be 0..", modes.size() - 1);
  bert::model<> model(model_dir);
  model.quantize(calibrate(model, read_ids(calibration_ids)), modes[std::size_t(f.get("mode"))].options);
  const auto sequences = read_ids(eval_ids);
  const index_t H = model.cfg().hidden;

  // The forward calls: batches of similar length (sorted, as the ORT side buckets them).
  const auto calls = bert::length_sorted_batches(sequences, std::size_t(f.get("batch")));

  qtx::aligned_buffer<float> hidden;
  measurement fp32, w8a8;
  auto pass = [&](measurement& m, auto&& forward) {
    std::vector<double> seconds, cpu_seconds;
    m.embeddings.assign(sequences.size(), {});
    for (const auto& call : calls) {
      const double c0 = thread_cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      forward(call.ids);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      cpu_seconds.push_back(thread_cpu_seconds() - c0);
      auto embeddings = bert::mean_pool_normalize(hidden.data(), call.ids, H);
      for (std::size_t i = 0; i < embeddings.size(); ++i) m.embeddings[call.index[i]] = std::move(embeddings[i]);
    }
    m.seconds.push_back(std::move(seconds));
    m.cpu_seconds.push_back(std::move(cpu_seconds));
  };
  const auto forward_fp32 = [&](std::span<const bert::ids_view> views) { model.forward(views, hidden); };
  const auto forward_w8a8 = [&](std::span<const bert::ids_view> views) { model.forward_w8a8(views, hidden); };
  for (index_t i = 0; i < f.get("warmup"); ++i) {
    const auto& views = calls[std::size_t(i) % calls.size()].ids;
    forward_fp32(views);
    forward_w8a8(views);
  }
  for (index_t r = 0; r < f.get("repeats"); ++r) {
    pass(fp32, forward_fp32);
    pass(w8a8, forward_w8a8);
  }
  fs::create_directories(out_dir);
  write_npy(out_dir / "fp32_embeddings.npy", fp32.embeddings);
  write_npy(out_dir / "w8a8_embeddings.npy", w8a8.embeddings);
  for (const auto& [name, m] : {std::pair{"fp32", &fp32}, std::pair{"w8a8", &w8a8}}) {
    write_npy(out_dir / (std::string(name) + "_seconds.npy"), m->seconds);
    write_npy(out_dir / (std::string(name) + "_cpu_seconds.npy"), m->cpu_seconds);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "tokenize") return tokenize(argc, argv);
  if (command == "run") return run(argc, argv);
  std::fprintf(stderr,
               "usage: %s tokenize MODEL_DIR TEXT_DIR OUT_DIR [--heldout N] [--calibration N]\n"
               "       %s run MODEL_DIR CALIBRATION_IDS EVAL_IDS OUT_DIR [--repeats R] [--warmup W] [--batch B]"
               " [--weight-bits 8|7] [--mode 0..5]\n",
               argv[0], argv[0]);
  return 2;
} catch (const std::exception& e) {
  std::fprintf(stderr, "qtx_peers_runner: %s\n", e.what());
  return 1;
}
