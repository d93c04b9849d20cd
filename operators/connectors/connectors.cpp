#include "operators/connectors/connectors.hpp"

#include "operators/connectors/file_source.hpp"
#include "operators/connectors/generator_source.hpp"
#include "operators/connectors/sinks.hpp"

namespace vigil {

void register_connectors(operator_registry& r) {
  r.add(make_generator_factory());
  r.add(make_file_source_factory());
  r.add(make_stdout_sink_factory());
  r.add(make_jsonl_file_sink_factory());
  r.add(make_null_sink_factory());
}

}  // namespace vigil
