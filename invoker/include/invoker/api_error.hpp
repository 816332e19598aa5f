#pragma once
// A failure the API answers in Lambda's shape: status, x-amzn-ErrorType and,
// for throttles, the Reason field Lambda adds.

#include <string>

#include "sandbox/error.hpp"

namespace thaw::invoker {

struct ApiError : Error {
  unsigned status;
  std::string type;
  std::string reason;  // TooManyRequestsException's Reason, empty otherwise
  ApiError(unsigned s, std::string t, const std::string& message, std::string r = "")
      : Error(message), status(s), type(std::move(t)), reason(std::move(r)) {}
};

[[noreturn]] inline void throw_not_found(const std::string& what) {
  throw ApiError(404, "ResourceNotFoundException", what);
}

}  // namespace thaw::invoker
