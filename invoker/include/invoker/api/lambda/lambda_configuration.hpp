#pragma once
// A function as Lambda's API shows it (FunctionConfiguration): the one place
// a record becomes wire JSON.

#include <nlohmann/json.hpp>

#include "invoker/functions/registry.hpp"

namespace thaw::invoker {

// `snapshotted`: this thawd checkpoints the function (SnapStart's
// OptimizationStatus "On"): its policy asks for it, its runtime is one thaw
// snapshots, and snapshots are on.
nlohmann::json lambda_configuration(const FunctionRecord& record, bool snapshotted);

}  // namespace thaw::invoker
