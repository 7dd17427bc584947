// The vocabulary of the spec, JSON paths for messages, and the "did you mean"
// helper for unknown names.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace gs {

inline const std::vector<std::string> kTopKeys = {"name", "description", "seeds", "rng", "rng_key", "precision",
                                                  "grid", "network", "input", "loss"};
inline const std::vector<std::string> kNetworkKeys = {"depth", "width", "layer_sizes", "input_dim", "output_dim",
                                                      "activation", "leaky_slope", "shortcut", "bias",
                                                      "last_activation", "residual_scale", "init",
                                                      "sigma_w", "sigma_b", "sigma_w2", "sigma_b2"};
// The one string residual_scale takes besides a number: 1/sqrt of the cell's depth.
inline constexpr const char* kResidualScaleInvSqrtDepth = "1/sqrt(depth)";
inline const std::vector<std::string> kSeedsKeys = {"count", "first"};
inline const std::vector<std::string> kInputKeys = {"values", "distribution", "batch"};
inline const std::vector<std::string> kLossKeys = {"kind", "target"};
inline const std::vector<std::string> kInitKeys = {"kind", "sigma_w", "sigma_b"};
inline constexpr const char* kRngNames[] = {"philox", "torch"};
inline constexpr const char* kPrecisionNames[] = {"float32", "float64"};

std::string join(const std::vector<std::string>& names);
// "parent.key", or parent["odd key"] (JSON-escaped, shortened) when the key is not
// a plain identifier, so a message naming a user's key always stays on one line.
std::string join_path(const std::string& parent, const std::string& key);
std::string index_path(const std::string& parent, size_t i);  // "parent[i]"
// A user's string as a JSON string literal: escaped, ASCII only, at most about
// `max` characters (longer ones end in "...").
std::string quote(const std::string& s, size_t max = 40);
// " (did you mean \"x\"?)" when a known name is close, else "".
std::string suggestion(const std::string& given, const std::vector<std::string>& known);

}  // namespace gs
