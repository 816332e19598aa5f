#include "command_line.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "errors.hpp"

namespace thaw::cli {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// --flag=value is --flag value.
std::pair<std::string, std::optional<std::string>> split_flag(const std::string& arg) {
  const auto eq = arg.find('=');
  if (arg.rfind("--", 0) != 0 || eq == std::string::npos) return {arg, std::nullopt};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// The name the synopsis gives the positional argument at `index` ("DIR|ZIP").
std::string argument_name(const CommandSpec& spec, size_t index) {
  std::istringstream words(spec.synopsis);
  std::string word;
  for (size_t i = 0; words >> word && word[0] != '[' && word[0] != '-'; ++i)
    if (i == index) return word;
  return "an argument";
}

bool is_flag(const std::string& arg) {
  return arg.size() > 2 && arg.rfind("--", 0) == 0;
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

GlobalOptions parse_global_options(const std::vector<std::string>& argv) {
  GlobalOptions o;
  for (size_t i = 0; i < argv.size(); ++i) {
    const auto [flag, inline_value] = split_flag(argv[i]);
    auto value = [&, name = flag, given = inline_value]() -> std::string {
      if (given) return *given;
      if (i + 1 >= argv.size()) throw UsageError(name + " needs a value");
      return argv[++i];
    };
    if (flag == "--endpoint") {
      o.endpoint = value();
    } else if (flag == "--token") {
      o.token = value();
    } else if (flag == "--state-dir") {
      o.state_dir = value();
    } else if (flag == "--json") {
      o.json = true;
    } else if (flag == "--help" || flag == "-h") {
      o.help = true;
    } else if (flag == "--version" && o.command.empty()) {
      o.version = true;
    } else if (o.command.empty() && is_flag(flag)) {
      throw UsageError("unknown option " + flag);
    } else if (o.command.empty()) {
      o.command = argv[i];
    } else {
      o.rest.push_back(argv[i]);
    }
  }
  return o;
}

CommandLine parse_command_line(const CommandSpec& spec, const std::vector<std::string>& args,
                               bool json) {
  CommandLine line;
  line.json = json;
  for (size_t i = 0; i < args.size(); ++i) {
    if (!is_flag(args[i])) {
      line.args.push_back(args[i]);
      continue;
    }
    const auto [flag, inline_value] = split_flag(args[i]);
    if (spec.value_flags.count(flag)) {
      if (inline_value) {
        line.flags[flag].push_back(*inline_value);
      } else {
        if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
        line.flags[flag].push_back(args[++i]);
      }
    } else if (spec.switches.count(flag) && !inline_value) {
      line.flags[flag].push_back("");
    } else {
      throw UsageError("thaw " + spec.name + ": unknown option " + flag);
    }
  }
  if (line.args.size() < spec.min_args)
    throw UsageError("thaw " + spec.name + ": " + argument_name(spec, line.args.size()) +
                     " is missing");
  if (line.args.size() > spec.max_args)
    throw UsageError("thaw " + spec.name + ": unexpected argument \"" + line.args[spec.max_args] +
                     "\"");
  return line;
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
