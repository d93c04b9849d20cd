// vigilctl: the command-line client of the coordinator's gRPC API.
#include <iostream>

#include "tools/vigilctl/vigilctl.hpp"

int main(int argc, char** argv) {
  return vigil::run_vigilctl(argc, argv, std::cout, std::cerr);
}
