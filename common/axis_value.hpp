// The typed values that identify a point: (axis, value) pairs compared by type and value, never
// by how they print. A bandwidth of 8 Gbit/s is the double 8, whatever "%g" makes of it; an
// unlimited one is `none`; a bandwidth trace is its label "trace:bt.csv@<hash>".
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace cake {

struct AxisValue {
  // none: "unlimited", "not set"; integers: tokens and counts; reals: rates; text: names.
  std::variant<std::monostate, int64_t, double, std::string> value;

  AxisValue() = default;
  static AxisValue none() { return AxisValue(); }
  static AxisValue integer(int64_t v) { return AxisValue(v); }
  static AxisValue real(double v) { return AxisValue(v); }
  static AxisValue text(std::string v) { return AxisValue(std::move(v)); }

  bool is_none() const { return std::holds_alternative<std::monostate>(value); }
  bool is_integer() const { return std::holds_alternative<int64_t>(value); }
  bool is_real() const { return std::holds_alternative<double>(value); }
  bool is_text() const { return std::holds_alternative<std::string>(value); }
  int64_t as_integer() const { return get<int64_t>("an integer"); }
  double as_real() const { return get<double>("a real number"); }
  const std::string& as_text() const { return get<std::string>("text"); }

  // Type first (none < integer < real < text), then value. NaN never enters an identity.
  auto operator<=>(const AxisValue&) const = default;
  bool operator==(const AxisValue&) const = default;

  // For keys and notes: "none", "1024", "0.5", "file".
  std::string print() const {
    if (is_none()) return "none";
    if (is_integer()) return std::to_string(as_integer());
    if (is_real()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g", as_real());
      return buf;
    }
    return as_text();
  }

  nlohmann::json to_json() const {
    if (is_none()) return nullptr;
    if (is_integer()) return as_integer();
    if (is_real()) return as_real();  // nlohmann writes 8.0, so it reads back as a real
    return as_text();
  }

  // Throws UsageError naming `where` for arrays, objects and booleans.
  static AxisValue from_json(const nlohmann::json& j, std::string_view where) {
    if (j.is_null()) return none();
    if (j.is_number_integer()) return integer(j.get<int64_t>());
    if (j.is_number_float()) return real(j.get<double>());
    if (j.is_string()) return text(j.get<std::string>());
    throw UsageError(cat(where, ": expected null, a number or a string, got ", j.type_name()));
  }

 private:
  template <typename T>
    requires(!std::is_same_v<std::decay_t<T>, AxisValue>)  // never a copy constructor in disguise
  explicit AxisValue(T v) : value(std::move(v)) {}

  template <typename T>
  const T& get(const char* what) const {
    if (const T* v = std::get_if<T>(&value)) return *v;
    throw InternalError(cat("axis value ", print(), " is not ", what));
  }
};

struct AxisField {
  std::string axis;
  AxisValue value;

  auto operator<=>(const AxisField&) const = default;
  bool operator==(const AxisField&) const = default;
};

// A point's identity, or any set of (axis, value) pairs: compared field by field, in order.
using AxisFields = std::vector<AxisField>;

// "name=value name=value" for keys and notes.
inline std::string print_fields(const AxisFields& fields) {
  std::string out;
  for (const AxisField& f : fields) out += cat(out.empty() ? "" : " ", f.axis, "=", f.value.print());
  return out;
}

inline const AxisValue* find_field(const AxisFields& fields, std::string_view axis) {
  for (const AxisField& f : fields)
    if (f.axis == axis) return &f.value;
  return nullptr;
}

}  // namespace cake
