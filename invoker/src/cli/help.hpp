#pragma once
// thaw --help, made from the command table so that every command is in it.

#include <string>
#include <vector>

#include "command_line.hpp"

namespace thaw::cli {

std::string help_text(const std::vector<CommandSpec>& commands);
// thaw COMMAND --help
std::string command_help(const CommandSpec& command);
// "usage: thaw deploy NAME DIR|ZIP ..."
std::string usage_line(const CommandSpec& command);

}  // namespace thaw::cli
