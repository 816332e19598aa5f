#pragma once
// What went wrong, in thawd's own terms. The service, the scheduler and the
// request parsers throw a Failure; each way in answers it in its own shape:
// Lambda's API with a status and x-amzn-ErrorType (lambda_errors.hpp), the
// HTTP trigger as an API gateway does. No HTTP status below those two.

#include <string>
#include <utility>

#include "thaw/error.hpp"

namespace thaw::invoker {

enum class FailureKind {
  NotFound,          // no such function, event or snapshot
  Conflict,          // exists already, or not in the state the call needs
  InvalidParameter,  // a value the call cannot take; the message names the field
  InvalidContent,    // a body that is not the JSON the call takes
  TooLarge,          // a payload over its limit
  Throttled,         // no room to run it now; `reason` says which limit
  StorageFull,       // the host's code storage
  Forbidden,         // allowed with the admin credential only
  Internal,          // thawd's own fault
};

struct Failure : Error {
  FailureKind kind;
  // For Throttled: which limit, in the words Lambda's Reason field uses
  // (ReservedFunctionConcurrentInvocationLimitExceeded, ...). Else empty.
  std::string reason;
  Failure(FailureKind k, const std::string& message, std::string r = "")
      : Error(message), kind(k), reason(std::move(r)) {}
};

[[noreturn]] inline void throw_not_found(const std::string& what) {
  throw Failure(FailureKind::NotFound, what);
}

}  // namespace thaw::invoker
