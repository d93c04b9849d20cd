#include <iostream>

#include "tools/demo/demo.hpp"

int main(int argc, char** argv) {
  return vigil::demo::run_demo_tool(argc, argv, std::cout, std::cerr);
}
