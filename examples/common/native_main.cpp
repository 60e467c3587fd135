// main() of a dispatch-ready example built for one ISA only (QTX_DISPATCH_EXAMPLES=OFF): runs the
// example's qtx_example::QTX_ABI::main, compiled with the same flags as this file.
#include <qtx/config.hpp>

namespace qtx_example::QTX_ABI {
int main(int argc, char** argv);
}  // namespace qtx_example::QTX_ABI

int main(int argc, char** argv) { return qtx_example::main(argc, argv); }
