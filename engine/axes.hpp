// The sweep axes, each declared once (as nvbench declares an axis once and reads it back by
// name). One entry gives an axis its name, flag, --help text, default per backend, parser and
// printer; from the table follow:
//   - the CLI flags and their --help (cli/run_flags.cpp registers one option per entry);
//   - the --config JSON keys (the flag names without dashes);
//   - the resolved values in results.json (config.axes: typed values, never the raw flag text);
//   - the cartesian product run_sweep runs (engine/sweep.cpp);
//   - the typed (axis, value) pairs of point identity (results/report.hpp, point_identity).
// The table lives in engine/ because the values are the engine's (chunk sizes, modes, sources,
// bandwidth settings) and the sweep runs them; cli/ only turns entries into flags, and results/
// only sees the typed values, so the dependency direction stays common <- ... <- engine <- cli.
//
// Adding an axis: one `generic_axis` entry in axes.cpp, plus the code that uses its value (read
// it from the assignment SweepConfig::configure receives, by name). Its neutral value is the one
// a cake-bench without the axis ran at; points at it keep the identity they had before. An axis
// whose value changes the KV bytes (a codec, an attention kernel that is not bit-exact with the
// others) must also enter the store key (loaders/store_format.hpp), or a store written under one
// value is loaded under another; the sweep recomputes the reference per combination already.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/axis_value.hpp"
#include "engine/sweep.hpp"

namespace cake {

struct SweepAxis {
  std::string name;   // identity and config.axes key: "chunk", "bandwidth", "attention"
  std::string flag;   // "--chunk"
  std::string help;   // what it is, its accepted forms, and its defaults
  bool prepare = false;  // `prepare` takes it too (it decides which stores exist)
  // The values a bare command gets on this backend ("[default: ...]" in --help says the same).
  std::function<std::string(bool gpu)> default_text;
  // Parses the flag's text and stores the values in the sweep. UsageError naming the flag.
  std::function<void(const std::string& text, SweepConfig& config)> set;
  // The resolved values, typed, as results.json records them.
  std::function<std::vector<AxisValue>(const SweepConfig& config)> values;
  // How one value reads for people ("8 Gbps", "unlimited").
  std::function<std::string(const AxisValue& value)> print;
};

// Every axis, in the order the sweep nests them (outermost first among the generic ones).
const std::vector<SweepAxis>& sweep_axes();
// The entry named `name`; InternalError when there is none (a typo in the code, not the user's).
const SweepAxis& sweep_axis(std::string_view name);

// Sets every axis of `config`: the given text (by axis name), or the backend's default, which is
// then noted ("chunk: 1024 (default for a GPU run)"). `sweep` false: only the `prepare` axes.
void resolve_axes(const std::map<std::string, std::string>& given, bool gpu, bool sweep, SweepConfig& config,
                  std::vector<std::string>& notes);

// {"chunk": [1024], "bandwidth": [8.0, null, "trace:bt.csv@1a2b3c4d"], "mode": ["compute", ...], ...}
nlohmann::json resolved_axes_json(const SweepConfig& config);

// The conditions a point ran under on purpose (injected compute delay, failing chunks), as
// Point::conditions records them; empty for a clean run.
AxisFields sweep_conditions(const SweepConfig& config);

}  // namespace cake
