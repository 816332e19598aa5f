#pragma once
// thaw's commands. Each takes its arguments (after the command's name) and
// returns the process's exit code.

#include <stdexcept>
#include <string>
#include <vector>

#include "client.hpp"

namespace thaw::cli {

// Exit codes scripts can rely on.
enum Exit : int {
  kOk = 0,
  kApiError = 1,       // thawd answered with an error
  kUsage = 2,          // bad command line
  kUnreachable = 3,    // thawd did not answer
  kFunctionError = 4,  // the function itself failed
};

// A bad command line (exit code 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An error already shown to the user; `code` is the exit code.
struct Reported : std::exception {
  explicit Reported(int c) : code(c) {}
  int code;
};

using Args = std::vector<std::string>;

int deploy(Client& c, const Args& args);
int invoke(Client& c, const Args& args);
int list(Client& c, const Args& args);
int get(Client& c, const Args& args);
int remove(Client& c, const Args& args);
int logs(Client& c, const Args& args);
int snapshots(Client& c, const Args& args);
int usage(Client& c, const Args& args);
int instances(Client& c, const Args& args);
int concurrency(Client& c, const Args& args);
int health(Client& c, const Args& args);

}  // namespace thaw::cli
