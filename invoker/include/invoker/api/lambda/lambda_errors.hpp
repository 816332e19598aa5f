#pragma once
// How Lambda's API answers each kind of failure: its status and
// x-amzn-ErrorType, in one table.

#include "invoker/functions/failure.hpp"
#include "invoker/http/http.hpp"

namespace thaw::invoker {

struct LambdaErrorShape {
  http::status status;
  const char* type;  // x-amzn-ErrorType
};

LambdaErrorShape lambda_shape(FailureKind kind);

// The answer to `f` in Lambda's shape, Reason included for throttles.
Response lambda_error(const Failure& f);

}  // namespace thaw::invoker
