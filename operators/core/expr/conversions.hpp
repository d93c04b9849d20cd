#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/int_math.hpp"

/// Text forms of values, shared by casts and concat. Parsers accept surrounding ASCII
/// whitespace and return nullopt for anything else that is not a complete value.

namespace vigil::expr {

/// Appends the decimal form of `v`.
void append_int(std::string& out, int64_t v);
/// Appends the shortest form that reads back as `v` ("2.5", "3", "1e+20", "nan", "inf").
void append_double(std::string& out, double v);
/// Appends ISO 8601 UTC: "2024-03-01T12:00:00Z", with ".123" or ".123456" when the
/// microseconds are not zero.
void append_timestamp(std::string& out, int64_t us);

/// An optional sign and decimal digits.
std::optional<int64_t> parse_int(std::string_view s);
/// A decimal or scientific number, or inf/nan.
std::optional<double> parse_double(std::string_view s);
/// "true" or "false", in any letter case.
std::optional<bool> parse_bool(std::string_view s);
/// "YYYY-MM-DD" optionally followed by 'T' or ' ' and "HH:MM[:SS[.fraction]]", then optionally
/// 'Z' or an offset "+HH:MM" / "-HH:MM" / "+HHMM" (no offset means UTC). Fraction digits beyond
/// microseconds are truncated. Returns µs since the epoch.
std::optional<int64_t> parse_timestamp(std::string_view s);

}  // namespace vigil::expr
