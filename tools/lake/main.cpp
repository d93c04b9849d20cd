// vigil-lake: inspects and verifies Delta tables written by Vigil's lake sink.
#include <iostream>

#include "tools/lake/lake_tool.hpp"

int main(int argc, char** argv) {
  return vigil::run_lake_tool(argc, argv, std::cout, std::cerr);
}
