#include "operators/kafka/source/kafka_source_state.hpp"

namespace vigil {

namespace {

constexpr std::string_view magic = "VKSS";
constexpr uint8_t flag_has_max = 1;
constexpr uint8_t flag_has_skip = 2;
/// Bytes per encoded position: partition, flags, next offset, max event time, skip-before.
constexpr size_t position_bytes = 4 + 1 + 8 + 8 + 8;

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

/// Reads little-endian integers from a byte string, remembering whether it ran past the end.
class byte_reader {
 public:
  explicit byte_reader(std::string_view bytes) : bytes_(bytes) {}

  bool has(size_t n) const { return bytes_.size() - pos_ >= n; }
  uint8_t u8() { return static_cast<uint8_t>(bytes_[pos_++]); }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(u8()) << (8 * i);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(u8()) << (8 * i);
    return v;
  }
  std::string_view take(size_t n) {
    std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

error corrupt(std::string_view what) {
  return make_error(errc::state_error, "kafka_source state is corrupt (" + std::string(what) + ")");
}

}  // namespace

std::string encode_kafka_source_state(const kafka_source_state& state) {
  std::string out;
  out.reserve(magic.size() + 1 + 4 + state.topic.size() + 4 +
              state.partitions.size() * position_bytes);
  out.append(magic);
  out.push_back(static_cast<char>(kafka_source_state_version));
  put_u32(out, static_cast<uint32_t>(state.topic.size()));
  out.append(state.topic);
  put_u32(out, static_cast<uint32_t>(state.partitions.size()));
  for (const kafka_partition_position& p : state.partitions) {
    put_u32(out, static_cast<uint32_t>(p.partition));
    uint8_t flags = 0;
    if (p.has_max_event_time) flags |= flag_has_max;
    if (p.has_skip_before) flags |= flag_has_skip;
    out.push_back(static_cast<char>(flags));
    put_u64(out, static_cast<uint64_t>(p.next_offset));
    put_u64(out, static_cast<uint64_t>(p.has_max_event_time ? p.max_event_time : 0));
    put_u64(out, static_cast<uint64_t>(p.has_skip_before ? p.skip_before_us : 0));
  }
  return out;
}

result<kafka_source_state> decode_kafka_source_state(std::string_view bytes) {
  byte_reader in(bytes);
  if (!in.has(magic.size() + 1) || in.take(magic.size()) != magic) {
    return make_error(errc::state_error,
                      "the checkpointed state is not a kafka_source state (wrong magic)");
  }
  const uint8_t version = in.u8();
  if (version != kafka_source_state_version) {
    return make_error(errc::state_error, "kafka_source state version " + std::to_string(version) +
                                             " is not supported (this build reads version " +
                                             std::to_string(kafka_source_state_version) + ")");
  }
  kafka_source_state state;
  if (!in.has(4)) return corrupt("truncated topic");
  const uint32_t topic_size = in.u32();
  if (!in.has(topic_size)) return corrupt("truncated topic");
  state.topic = std::string(in.take(topic_size));
  if (!in.has(4)) return corrupt("truncated partition count");
  const uint32_t count = in.u32();
  if (in.remaining() != static_cast<size_t>(count) * position_bytes) {
    return corrupt(std::to_string(count) + " partitions but " + std::to_string(in.remaining()) +
                   " bytes of positions");
  }
  state.partitions.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    kafka_partition_position p;
    p.partition = static_cast<int32_t>(in.u32());
    const uint8_t flags = in.u8();
    if ((flags & ~(flag_has_max | flag_has_skip)) != 0) return corrupt("unknown flags");
    p.next_offset = static_cast<int64_t>(in.u64());
    p.has_max_event_time = (flags & flag_has_max) != 0;
    p.max_event_time = static_cast<int64_t>(in.u64());
    p.has_skip_before = (flags & flag_has_skip) != 0;
    p.skip_before_us = static_cast<int64_t>(in.u64());
    if (p.partition < 0 || p.next_offset < 0) return corrupt("negative partition or offset");
    state.partitions.push_back(p);
  }
  return state;
}

}  // namespace vigil
