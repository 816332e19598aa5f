#pragma once
// A ChildPlan as bytes, for the spawn helper (thaw-sandbox-shim): spawn()
// writes the plan to a memfd, the helper reads it back and runs the shim in a
// small process of its own instead of a fork of the (large, threaded) caller.

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "child.hpp"

namespace thaw::sandbox::detail {

std::string encode_plan(const ChildPlan& plan);

// A decoded plan and the storage its pointers point into.
struct DecodedPlan {
  ChildPlan plan;
  std::deque<std::string> strings;
  std::vector<char*> argv, envp;
  std::vector<sock_filter> filter;
};

// False when `bytes` is not one whole plan.
bool decode_plan(std::string_view bytes, DecodedPlan& out);

}  // namespace thaw::sandbox::detail
