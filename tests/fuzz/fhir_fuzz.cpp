// libFuzzer harness: FHIR R4 JSON documents (an Observation, or a Bundle of them) through the
// clinical ingest's parser, normalization and pseudonymization. Built and run by run_fuzz.sh;
// see README.md.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "operators/clinical/fhir_parser.hpp"
#include "tests/fuzz/ingest_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One checker for the whole run: the parser reuses its simdjson parser and buffer from
  // document to document, as in the ingest operator.
  static vigil::fuzz::ingest_checker<vigil::clinical::fhir_parser> checker;
  checker.run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
