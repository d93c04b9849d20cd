// vigil-replay: replays PhysioNet 2019 ICU stays as HL7 v2 or FHIR messages into Kafka or a
// JSON-lines file (see --help).
#include <iostream>

#include "tools/replay/replay.hpp"

int main(int argc, char** argv) {
  return vigil::replay::run_replay_tool(argc, argv, std::cout, std::cerr);
}
