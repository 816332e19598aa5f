#include "help.hpp"

#include <sstream>

namespace thaw::cli {

namespace {

constexpr const char* kOptions = R"(Options, before or after the command:
  --endpoint HOST:PORT  thawd's address: this, then $THAW_ENDPOINT, then 127.0.0.1:8080
  --token T             the admin token: this, then $THAW_TOKEN, then the file
                        admin-token in the state directory
  --state-dir DIR       thawd's state directory: this, then $THAW_STATE_DIR, then .thaw
  --json                print thawd's JSON answer instead of text
  --help, -h            this help (thaw COMMAND --help: the command's)
  --version             thaw's version and what this host offers
)";

constexpr const char* kExitCodes = R"(Exit codes:
  0  success
  1  thawd answered with an error (its type and message are printed)
  2  bad usage: an unknown command or option, a missing argument, a package
     that cannot be read or is over 50 MB
  3  thawd could not be reached, or did not answer in time
  4  the function ran and returned an error (its error is printed)
)";

// "deploy NAME DIR|ZIP ..." on lines of at most 80 columns.
std::string wrapped_synopsis(const CommandSpec& c) {
  // Continuation lines start under the first argument.
  const std::string indent(3 + c.name.size(), ' ');
  std::istringstream words(c.synopsis);
  std::string out, line = "  " + c.name;
  for (std::string word; words >> word;) {
    if (line.size() + 1 + word.size() > 80) {
      out += line + "\n";
      line = indent + word;
    } else {
      line += " " + word;
    }
  }
  return out + line + "\n";
}

std::string indented(const std::string& text, const std::string& indent) {
  std::istringstream lines(text);
  std::string out;
  for (std::string line; std::getline(lines, line);) out += indent + line + "\n";
  return out;
}

}  // namespace

std::string usage_line(const CommandSpec& command) {
  return "usage: thaw " + command.name + (command.synopsis.empty() ? "" : " " + command.synopsis);
}

std::string help_text(const std::vector<CommandSpec>& commands) {
  std::string out =
      "Usage: thaw [OPTIONS] COMMAND [ARGS]\n\nthaw drives thawd, a Function-as-a-Service invoker "
      "with AWS Lambda's API.\n\nCommands:\n";
  for (const auto& c : commands) {
    out += wrapped_synopsis(c);
    out += indented(c.description, "      ");
  }
  return out + "\n" + kOptions + "\n" + kExitCodes;
}

std::string command_help(const CommandSpec& command) {
  return usage_line(command) + "\n\n" + command.description + "\n\n" + kOptions + "\n" + kExitCodes;
}

}  // namespace thaw::cli
