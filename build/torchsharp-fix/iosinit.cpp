// Shim for GCC 13's std::ios_base_library_init(), the one GLIBCXX_3.4.32 symbol that
// libLibTorchSharp.so 0.107.0 needs. Debian 12's libstdc++ (GCC 12) initialises the
// standard streams through <iostream>'s static init object instead, so an empty body is right.
#include <iostream>
namespace std { void ios_base_library_init() {} }
