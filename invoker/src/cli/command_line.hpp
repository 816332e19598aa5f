#pragma once
// thaw's command line, parsed once into values: the options every command
// takes, then the command's own arguments, checked against its spec.

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client.hpp"

namespace thaw::cli {

// A command's arguments: positional ones in order, flags by name (a flag
// given twice, like --env, keeps every value).
struct CommandLine {
  std::vector<std::string> args;
  std::map<std::string, std::vector<std::string>> flags;
  bool json = false;  // --json: print thawd's JSON answer as it is

  bool has(const std::string& flag) const { return flags.count(flag) > 0; }
  // The flag's last value, or `fallback` when it was not given.
  std::string value(const std::string& flag, const std::string& fallback = "") const;
  std::vector<std::string> values(const std::string& flag) const;
};

// What a command takes, for parsing and for --help.
struct CommandSpec {
  std::string name;
  std::string synopsis;     // the arguments after the name, for usage lines
  std::string description;  // what it does, in a few lines
  std::set<std::string> value_flags;
  std::set<std::string> switches;
  size_t min_args = 0;
  size_t max_args = 0;
  int (*run)(Client& thawd, const CommandLine& line) = nullptr;
};

// The options any command takes, wherever they appear.
struct GlobalOptions {
  std::optional<std::string> endpoint, token, state_dir;
  bool json = false;
  bool help = false;
  bool version = false;
};

struct ParsedArguments {
  GlobalOptions options;
  CommandLine line;  // the command's own arguments, when one was given
};

// Parses thaw's arguments with CLI11 against `commands`. `command` is set to
// the command given (null: none) as soon as it is known, so that a usage
// error can show that command's usage. Throws UsageError for an unknown
// command or flag, a flag without its value or a wrong count of arguments.
ParsedArguments parse_arguments(const std::vector<CommandSpec>& commands,
                                const std::vector<std::string>& argv, const CommandSpec*& command);

// --endpoint, then $THAW_ENDPOINT, then 127.0.0.1:8080.
Endpoint endpoint_of(const GlobalOptions& options);
// --token, then $THAW_TOKEN, then STATE_DIR/admin-token (--state-dir, then
// $THAW_STATE_DIR, then .thaw); empty when there is none.
std::string token_of(const GlobalOptions& options);

// A whole number for `what`, in [min, max]; a UsageError otherwise.
unsigned whole_number(const std::string& what, const std::string& text, unsigned min, unsigned max);

}  // namespace thaw::cli
