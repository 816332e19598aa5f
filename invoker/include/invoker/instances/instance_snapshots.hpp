#pragma once
// What names a snapshot. Checkpoint and restore are FunctionInstance's
// (function_instance.hpp); instance_snapshots.cpp holds them.

#include <memory>
#include <string>
#include <vector>

#include "invoker/instances/function_instance.hpp"

namespace thaw::invoker {

// The digest a snapshot is made for, and idle instances are kept for: code,
// configuration, runtime (with its files' fingerprint), thaw's version and
// the egress policy in force (effective_egress(...).text()).
std::string function_digest(const FunctionConfig& config, const std::string& code_sha256,
                            const std::string& runtime_fingerprint,
                            const std::string& egress = "none");

// What a criu started ahead for the function's snapshot must be told before
// it reads the images: --tcp-close when the dump closed the instance's TCP
// connections (functions with egress).
std::vector<std::string> spare_options(const HostEnvironment& host, const FunctionConfig& config);

}  // namespace thaw::invoker
