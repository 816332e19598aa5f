#pragma once
// What an instance's network looks like from inside: the egress policy that
// applies to its function (its own, or the host's default), and the
// resolv.conf and hosts files its /etc shows, one set per function, bound
// read-only at /etc/thaw (the root template's /etc/resolv.conf and
// /etc/hosts point there), for cold starts and restores alike.

#include <string>

#include "invoker/functions/function_config.hpp"
#include "invoker/instances/function_instance.hpp"
#include "sandbox/egress_policy.hpp"

namespace thaw::invoker {

sandbox::EgressPolicy effective_egress(const HostEnvironment& host, const FunctionConfig& config);

// The function's directory of /etc files, written (atomically) when what it
// holds is not what `host` and `config` say now. Throws Error.
std::string function_etc_dir(const HostEnvironment& host, const FunctionConfig& config);

// resolv.conf for a function with `policy` on `host`: its resolvers when the
// function has egress, none otherwise (then lookups fail at once).
std::string resolv_conf_text(const HostEnvironment& host, const sandbox::EgressPolicy& policy);

}  // namespace thaw::invoker
