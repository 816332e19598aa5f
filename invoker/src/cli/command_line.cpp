#include "command_line.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "errors.hpp"

namespace thaw::cli {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The name the synopsis gives the positional argument at `index` ("DIR|ZIP").
std::string argument_name(const CommandSpec& spec, size_t index) {
  std::istringstream words(spec.synopsis);
  std::string word;
  for (size_t i = 0; words >> word && word[0] != '[' && word[0] != '-'; ++i)
    if (i == index) return word;
  return "an argument";
}

// What a command's own flags collect while CLI11 parses.
struct CommandFlags {
  std::map<std::string, std::vector<std::string>> values;
  std::map<std::string, CLI::Option*> switches;
  std::vector<std::string> args;
};

void declare(CLI::App& sub, const CommandSpec& spec, CommandFlags& into) {
  sub.fallthrough();  // the options every command takes belong to the app
  for (const auto& flag : spec.value_flags)
    sub.add_option(flag, into.values[flag])
        ->expected(1)  // --env A=1 DIR: DIR is not a second value of --env
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  for (const auto& flag : spec.switches) into.switches[flag] = sub.add_flag(flag);
  if (spec.max_args > 0) sub.add_option("args", into.args);
}

// CLI11's words for a flag without its value, in thaw's.
std::string usage_message(const CLI::ParseError& e) {
  std::string what = e.what();
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) && what.rfind("--", 0) == 0) {
    const auto colon = what.find(':');
    if (colon != std::string::npos) return what.substr(0, colon) + " needs a value";
  }
  return what;
}

// Arguments nobody took: a flag no one knows, a command or an argument too many.
[[noreturn]] void refuse_extra(const CommandSpec* command, const std::string& first) {
  const std::string where = command ? "thaw " + command->name + ": " : "";
  if (first.size() > 1 && first[0] == '-') throw UsageError(where + "unknown option " + first);
  if (!command) throw UsageError("unknown command \"" + first + "\"");
  throw UsageError(where + "unexpected argument \"" + first + "\"");
}

}  // namespace

std::string CommandLine::value(const std::string& flag, const std::string& fallback) const {
  const auto it = flags.find(flag);
  return it == flags.end() ? fallback : it->second.back();
}

std::vector<std::string> CommandLine::values(const std::string& flag) const {
  const auto it = flags.find(flag);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

ParsedArguments parse_arguments(const std::vector<CommandSpec>& commands,
                                const std::vector<std::string>& argv, const CommandSpec*& command) {
  ParsedArguments out;
  GlobalOptions& o = out.options;
  CLI::App app("thaw drives thawd", "thaw");
  app.set_help_flag();  // --help is thaw's: the help is made from the command table
  app.allow_extras();   // what nobody takes is refused below, in thaw's words
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string endpoint, token, state_dir;
  auto* endpoint_flag = app.add_option("--endpoint", endpoint);
  auto* token_flag = app.add_option("--token", token);
  auto* state_dir_flag = app.add_option("--state-dir", state_dir);
  app.add_flag("--json", o.json);
  app.add_flag("-h,--help", o.help);
  app.add_flag("--version", o.version);
  std::vector<CommandFlags> flags(commands.size());
  std::vector<const CLI::App*> subcommands;  // in the order of `commands`
  for (size_t i = 0; i < commands.size(); ++i) {
    auto* sub = app.add_subcommand(commands[i].name);
    declare(*sub, commands[i], flags[i]);
    subcommands.push_back(sub);
  }

  std::vector<std::string> reversed(argv.rbegin(), argv.rend());  // CLI11 takes them so
  std::optional<std::string> failure;
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    failure = usage_message(e);
  }
  // The command is known even when its line is wrong: its usage goes with the error.
  const auto parsed = app.get_subcommands();
  size_t which = 0;
  if (!parsed.empty()) {
    which = static_cast<size_t>(std::find(subcommands.begin(), subcommands.end(), parsed.front()) -
                                subcommands.begin());
    command = &commands[which];
  }
  if (failure) throw UsageError((command ? "thaw " + command->name + ": " : "") + *failure);
  if (const auto rest = app.remaining(true); !rest.empty()) refuse_extra(command, rest.front());
  if (endpoint_flag->count()) o.endpoint = endpoint;
  if (token_flag->count()) o.token = token;
  if (state_dir_flag->count()) o.state_dir = state_dir;
  if (!command || o.help) return out;

  auto& mine = flags[which];
  out.line.json = o.json;
  out.line.args = mine.args;
  for (auto& [flag, values] : mine.values)
    if (!values.empty()) out.line.flags[flag] = values;
  for (const auto& [flag, option] : mine.switches)
    if (option->count()) out.line.flags[flag].push_back("");
  // CLI11 gives a positional that takes a list every one left.
  if (out.line.args.size() > command->max_args)
    refuse_extra(command, out.line.args[command->max_args]);
  if (out.line.args.size() < command->min_args)
    throw UsageError("thaw " + command->name + ": " +
                     argument_name(*command, out.line.args.size()) + " is missing");
  return out;
}

Endpoint endpoint_of(const GlobalOptions& options) {
  if (options.endpoint) return parse_endpoint(*options.endpoint, "--endpoint");
  if (const auto e = env("THAW_ENDPOINT"); !e.empty()) return parse_endpoint(e, "$THAW_ENDPOINT");
  return parse_endpoint("127.0.0.1:8080", "the default endpoint");
}

std::string token_of(const GlobalOptions& options) {
  if (options.token) return *options.token;
  if (auto t = env("THAW_TOKEN"); !t.empty()) return t;
  std::string dir = options.state_dir.value_or(env("THAW_STATE_DIR"));
  if (dir.empty()) dir = ".thaw";
  std::ifstream in(std::filesystem::path(dir) / "admin-token");
  std::string token;
  in >> token;
  return token;
}

unsigned whole_number(const std::string& what, const std::string& text, unsigned min,
                      unsigned max) {
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos || std::stoul(text) < min ||
      std::stoul(text) > max)
    throw UsageError(what + " must be a whole number from " + std::to_string(min) + " to " +
                     std::to_string(max) + ", got \"" + text + "\"");
  return static_cast<unsigned>(std::stoul(text));
}

}  // namespace thaw::cli
