#pragma once
// The examples' command lines, parsed by CLI11: --help prints the usage with every default; an
// unknown option, an option without its value, a value of the wrong type or out of range, a missing
// or non-existent directory are errors (message on stderr, exit status 2).
#include <qtx/core/types.hpp>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <limits>
#include <cstdlib>
#include <string>

namespace demo {

// A positional directory argument that must exist (MODEL_DIR, TEXT_DIR, …).
inline CLI::Option* add_directory(CLI::App& app, const std::string& name, std::filesystem::path& dir,
                                  const std::string& help) {
  return app.add_option(name, dir, help)->required()->check(CLI::ExistingDirectory);
}

// An option `flag N` with N >= 1 (sentence, image and calibration counts); shows its default.
inline CLI::Option* add_count(CLI::App& app, const std::string& flag, qtx::index_t& n, const std::string& help) {
  const CLI::Range at_least_one(qtx::index_t{1}, std::numeric_limits<qtx::index_t>::max(), "N>=1");
  return app.add_option(flag, n, help)->check(at_least_one)->capture_default_str();
}

// Parses argv into app's options, or ends the program: after --help (status 0) or a usage error
// (status 2), each printed by CLI11. Called before anything needs cleaning up.
inline void parse_or_exit(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
}

}  // namespace demo
