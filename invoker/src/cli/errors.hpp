#pragma once
// How thaw fails. Each kind of failure has its own exit code, which scripts
// rely on; main() turns the exception into the message and the code.

#include <stdexcept>
#include <string>

namespace thaw::cli {

enum ExitCode : int {
  kOk = 0,
  kThawdError = 1,     // thawd answered with an error
  kUsage = 2,          // a bad command line, or a package that cannot be sent
  kUnreachable = 3,    // thawd could not be reached, or did not answer in time
  kFunctionError = 4,  // the function ran and returned an error
};

// thawd refused the request: Lambda's error type (ResourceNotFoundException)
// and its message.
struct ThawdError : std::runtime_error {
  ThawdError(std::string error_type, const std::string& message)
      : std::runtime_error(message), type(std::move(error_type)) {}
  std::string type;
};

// The command line is wrong; the message says what and where.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// SIGINT or SIGTERM arrived while a request waited (thaw logs --follow).
struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

}  // namespace thaw::cli
