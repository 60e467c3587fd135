#pragma once
// Small utilities shared by the example programs: reading the prepared text, a progress bar,
// writing matrices as text, cosine similarities.
#include <qtx/core/error.hpp>
#include <qtx/core/types.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>  // isatty

namespace demo {

using qtx::index_t;

// Up to `count` non-empty lines, taking every `stride`-th one so a sample spans the whole file.
inline std::vector<std::string> read_lines(const std::filesystem::path& path, index_t count, index_t stride = 1) {
  std::ifstream in(path);
  qtx::check(in.good(), "cannot open '", path.string(), "' (run tools/prepare_text.py first)");
  std::vector<std::string> lines;
  index_t seen = 0;
  for (std::string line; index_t(lines.size()) < count && std::getline(in, line);)
    if (!line.empty() && seen++ % stride == 0) lines.push_back(line);
  return lines;
}

struct email {
  bool spam = false, train = false;
  std::string text;
};

// spam.tsv rows: label<TAB>split<TAB>text. Takes up to `count` rows spread over the file.
inline std::vector<email> read_spam(const std::filesystem::path& path, index_t count) {
  std::ifstream in(path);
  qtx::check(in.good(), "cannot open '", path.string(), "' (run tools/prepare_text.py first)");
  std::vector<email> all;
  for (std::string line; std::getline(in, line);) {
    const auto a = line.find('\t'), b = line.find('\t', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    all.push_back({line.substr(0, a) == "spam", line.substr(a + 1, b - a - 1) == "train", line.substr(b + 1)});
  }
  const index_t stride = std::max<index_t>(1, index_t(all.size()) / std::max<index_t>(count, 1));
  std::vector<email> picked;
  for (index_t i = 0; i < index_t(all.size()) && index_t(picked.size()) < count; i += stride) picked.push_back(all[i]);
  return picked;
}

// A progress bar on stderr, redrawn in place on a terminal; into a file or pipe (a log), one line
// when the work is done instead of a redraw per tick.
class progress {
 public:
  // The label is copied: callers build it from temporaries ("held-out W8A8 " + mode name).
  progress(std::string what, index_t total)
      : what_(std::move(what)), total_(total), start_(clock::now()), live_(isatty(fileno(stderr)) != 0) {
    if (live_) draw();
  }
  ~progress() {
    if (live_)
      std::fprintf(stderr, "\n");
    else if (!logged_)
      log_line();  // left before the end (an exception): the log still says how far it got
  }
  void tick() {
    ++done_;
    if (live_ && (done_ == total_ || done_ % std::max<index_t>(1, total_ / 50) == 0)) draw();
    if (!live_ && done_ == total_) log_line();
  }

 private:
  using clock = std::chrono::steady_clock;
  void log_line() {
    draw();
    std::fprintf(stderr, "\n");
    logged_ = true;
  }
  void draw() const {
    constexpr int width = 30;
    const int filled = total_ ? int(width * done_ / total_) : width;
    const double s = std::chrono::duration<double>(clock::now() - start_).count();
    std::fprintf(stderr, "%s%-24s [%.*s%*s] %ld/%ld %.1fs", live_ ? "\r" : "", what_.c_str(), filled,
                 "##############################", width - filled, "", long(done_), long(total_), s);
    std::fflush(stderr);
  }
  std::string what_;
  index_t total_, done_ = 0;
  clock::time_point start_;
  bool live_, logged_ = false;
};

template <class Rows>
void write_matrix(const std::filesystem::path& path, const Rows& rows) {
  std::ofstream out(path);
  qtx::check(out.good(), "cannot write '", path.string(), "'");
  out.precision(9);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) out << (i ? " " : "") << row[i];
    out << '\n';
  }
}

inline std::vector<double> cosines(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  std::vector<double> c;
  for (std::size_t i = 0; i < a.size(); ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t j = 0; j < a[i].size(); ++j)
      ab += double(a[i][j]) * b[i][j], aa += double(a[i][j]) * a[i][j], bb += double(b[i][j]) * b[i][j];
    c.push_back(ab / std::sqrt(aa * bb));
  }
  return c;
}

}  // namespace demo
