// The vocabulary of the spec and the "did you mean" helper for unknown names.
#pragma once
#include <string>
#include <vector>

namespace gs {

inline const std::vector<std::string> kTopKeys = {"name", "description", "seeds", "rng", "rng_key", "precision",
                                                  "grid", "network", "input", "loss"};
inline const std::vector<std::string> kNetworkKeys = {"depth", "width", "layer_sizes", "input_dim", "output_dim",
                                                      "activation", "leaky_slope", "shortcut", "bias",
                                                      "last_activation", "residual_scale", "init"};
inline constexpr const char* kRngNames[] = {"philox", "torch"};
inline constexpr const char* kPrecisionNames[] = {"float32", "float64"};

std::string join(const std::vector<std::string>& names);
std::string join_path(const std::string& parent, const std::string& key);
// " (did you mean \"x\"?)" when a known name is close, else "".
std::string suggestion(const std::string& given, const std::vector<std::string>& known);

}  // namespace gs
