#pragma once

#include "common/result.hpp"
#include "coordinator/coordinator_api.hpp"
#include "vigil/v1/api.pb.h"

namespace vigil {

/// Conversions between the coordinator's types and their vigil.v1 wire form, shared by the
/// gRPC services and the job store (which persists the wire form).

v1::JobState to_proto(job_state state);
v1::Job to_proto(const job_info& job);
v1::Worker to_proto(const worker_info& worker);

/// Refuses JOB_STATE_UNSPECIFIED and values this build does not know.
result<job_state> from_proto(v1::JobState state);
result<job_info> from_proto(const v1::Job& job);

}  // namespace vigil
