#pragma once

#include "runtime/operator.hpp"

namespace vigil {

/// Registers `key_by`: keys a stream by one or more of its fields.
///
/// Config: `key` (string or list of strings, required): the key fields, each a field of the
/// input. Ports: in "in", out "out". The output has the input's schema and event times; it is
/// keyed on the key fields (stream_info::key_fields in config order) and every batch carries
/// key_hash = hash_encoded_key(encode_key(key fields)) per row. A null key field is a key value
/// like any other (rows whose keys are both null hash alike).
void register_key_by_operator(operator_registry& r);

}  // namespace vigil
