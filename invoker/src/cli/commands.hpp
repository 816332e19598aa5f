#pragma once
// thaw's commands. Each takes thawd's client and its parsed command line and
// returns the exit code; failures are thrown (errors.hpp).

#include <string>
#include <vector>

#include "command_line.hpp"

namespace thaw::cli {

// In the order --help lists them.
const std::vector<CommandSpec>& all_commands();

int deploy(Client& thawd, const CommandLine& line);       // deploy.cpp
int invoke(Client& thawd, const CommandLine& line);       // invoke.cpp
int list(Client& thawd, const CommandLine& line);         // functions.cpp
int get(Client& thawd, const CommandLine& line);          // functions.cpp
int remove(Client& thawd, const CommandLine& line);       // functions.cpp
int concurrency(Client& thawd, const CommandLine& line);  // functions.cpp
int logs(Client& thawd, const CommandLine& line);         // logs.cpp
int snapshots(Client& thawd, const CommandLine& line);    // reports.cpp
int usage(Client& thawd, const CommandLine& line);        // reports.cpp
int instances(Client& thawd, const CommandLine& line);    // reports.cpp
int health(Client& thawd, const CommandLine& line);       // reports.cpp

// /2015-03-31/functions/NAME, the name encoded.
std::string function_path(const std::string& name);

}  // namespace thaw::cli
