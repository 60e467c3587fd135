// main() of an example built with run-time ISA dispatch (qtx/dispatch.hpp): the example's own
// source, compiled once per ISA by qtx_add_dispatch, defines qtx_example::QTX_ABI::main; this file,
// built for the baseline, runs the variant for the best ISA the CPU supports (capped by QTX_ISA).
#include <cstdio>

#include <qtx/dispatch.hpp>

namespace qtx_example {
using main_function = int(int, char**);
QTX_DISPATCH_DECLARE(main_function, main)
}  // namespace qtx_example

int main(int argc, char** argv) {
  try {
    return qtx_example::main_dispatch().function(argc, argv);
  } catch (const qtx::error& e) {  // QTX_ISA names no instruction set, or no variant runs here
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
