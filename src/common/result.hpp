#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vigil {

/// Error categories shared by all subsystems. Converted to grpc::Status only in *_service files.
enum class errc {
  invalid_argument,  ///< A value given by the user is wrong (config, flag, expression).
  invalid_graph,     ///< The job graph is not runnable (unknown operator, cycle, schema mismatch).
  parse_error,       ///< A document (YAML, JSON, CSV) could not be parsed.
  not_found,         ///< A named thing does not exist.
  /// Not enough capacity right now, e.g. free task slots for a job.
  resource_exhausted,
  /// The request is valid but the target is not in a state that allows it (e.g. a savepoint
  /// of a job that does not run).
  failed_precondition,
  io_error,     ///< The file system or network failed.
  state_error,  ///< The state backend (RocksDB) failed.
  internal,     ///< A broken invariant; a bug in Vigil.
};

const char* to_string(errc code);

/// An error with a message a user can act on, e.g.
/// "node 'join_labs': config.key: field 'patient' missing from input 'labs'".
struct error {
  errc code = errc::internal;
  std::string message;
};

inline error make_error(errc code, std::string message) {
  return error{code, std::move(message)};
}

/// Either a value or an error (a small std::expected). No exception crosses an API boundary.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  result(error err) : v_(std::move(err)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());  // Callers check ok() first.
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error err) : err_(std::move(err)) {}  // NOLINT

  bool ok() const { return !err_.has_value(); }
  explicit operator bool() const { return ok(); }
  const error& err() const {
    assert(!ok());
    return *err_;
  }

 private:
  std::optional<error> err_;
};

using status = result<void>;

/// Prefixes an error's message, keeping its code: "node 'x': " + message.
inline error with_context(std::string_view prefix, error err) {
  err.message.insert(0, prefix);
  return err;
}

}  // namespace vigil

/// Propagates an error from an expression returning result<T>.
#define VIGIL_TRY(expr)                              \
  do {                                               \
    if (auto vigil_try_r_ = (expr); !vigil_try_r_) { \
      return vigil_try_r_.err();                     \
    }                                                \
  } while (false)
