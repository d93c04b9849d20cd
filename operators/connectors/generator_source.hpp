#pragma once

#include <cstdint>
#include <memory>

#include "runtime/operator.hpp"

/// `generator`: a source of deterministic synthetic records for tests, examples and benchmarks.
///
/// Output schema: key (int64, or string "k000042" with key_type: string), seq (int64), value
/// (double), ts (timestamp); all non-null; event time = ts. Record `seq` has
///   ts    = start_time + seq * interval - jitter,  jitter uniform in [0, out_of_orderness]
///   key   = h % keys,  value = uniform in [0, 100) with 3 decimals,
/// where h and the jitter are hashes of (seed, seq) only, so the records are the same whatever
/// the parallelism and batch size. Subtask i of p generates the seqs with seq % p == i in
/// increasing order; `count` is the total over all subtasks (0 = unbounded). After each poll the
/// watermark is (start_time + last emitted seq * interval) - out_of_orderness, which no later
/// record of the subtask can reach.

namespace vigil {

/// SplitMix64's finalizer: a bijective 64-bit mixer.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// The hashed fields of generator record `seq`.
struct generated_values {
  uint64_t key = 0;       ///< In [0, keys).
  double value = 0;       ///< In [0, 100), a multiple of 0.001.
  int64_t jitter_us = 0;  ///< In [0, out_of_orderness_us].
};

/// Computes the hashed fields of record `seq` of a generator with `seed`.
generated_values generate_values(uint64_t seed, uint64_t seq, uint64_t keys,
                                 int64_t out_of_orderness_us);

std::unique_ptr<operator_factory> make_generator_factory();

}  // namespace vigil
