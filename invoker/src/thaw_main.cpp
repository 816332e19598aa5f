// thaw: the command-line client of thawd.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "cli/commands.hpp"
#include "invoker/system_facts.hpp"

using namespace thaw;
using namespace thaw::cli;

namespace {

constexpr const char* kHelp =
    R"(Usage: thaw [--endpoint HOST:PORT] [--token T] [--state-dir DIR] COMMAND [ARGS]

Commands:
  deploy NAME DIR|ZIP --runtime R --handler H [--memory MB] [--timeout S]
         [--env K=V ...] [--no-snapshot]
                       create the function, or update its code and configuration;
                       waits for its snapshot (python3.11) and shows progress
  invoke NAME [JSON|-] [--async] [--log] [--start-mode cold|restore|warm]
                       invoke with JSON (default {}; - reads stdin); --async queues
                       it (Event), --log prints the log tail to stderr, --start-mode
                       forces how the instance starts (operators, benchmarks)
  ls [--json]          list functions
  get NAME             show a function (GetFunction)
  rm NAME              delete a function
  logs NAME [--follow] print the function's log; --follow keeps printing
  snapshots [--json]   list snapshots: size, age, restores served
  usage [--json]       invocations, errors, throttles, billed ms, GB-seconds
  instances [--json]   live instances and their state
  concurrency NAME [N | --delete]
                       show, set or remove reserved concurrency (0 throttles all)
  health               ask thawd whether it is up
  --version            print thaw's version and what this host offers
  --help               print this help

thawd's address: --endpoint, then $THAW_ENDPOINT, then 127.0.0.1:8080.
The admin token: --token, then $THAW_TOKEN, then the file admin-token in the
state directory (--state-dir, then $THAW_STATE_DIR, then .thaw).

Exit codes: 0 success, 1 thawd answered with an error, 2 bad usage,
3 thawd unreachable, 4 the function returned an error.
)";

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string read_token(const std::string& state_dir) {
  std::ifstream in(std::filesystem::path(state_dir) / "admin-token");
  std::string token;
  in >> token;
  return token;
}

}  // namespace

int main(int argc, char** argv) {
  using Command = int (*)(Client&, const Args&);
  const std::map<std::string, Command> commands = {{"deploy", &cli::deploy},
                                                   {"invoke", &cli::invoke},
                                                   {"ls", &cli::list},
                                                   {"get", &cli::get},
                                                   {"rm", &cli::remove},
                                                   {"logs", &cli::logs},
                                                   {"snapshots", &cli::snapshots},
                                                   {"usage", &cli::usage},
                                                   {"instances", &cli::instances},
                                                   {"concurrency", &cli::concurrency},
                                                   {"health", &cli::health}};
  std::string endpoint = env_or("THAW_ENDPOINT", "127.0.0.1:8080");
  std::string token = env_or("THAW_TOKEN", "");
  std::string state_dir = env_or("THAW_STATE_DIR", ".thaw");
  try {
    int i = 1;
    for (; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw UsageError(a + " needs a value");
        return argv[++i];
      };
      if (a == "--version") {
        std::cout << invoker::format_version_report("thaw", invoker::gather_system_facts());
        return kOk;
      }
      if (a == "--help" || a == "-h") {
        std::cout << kHelp;
        return kOk;
      }
      if (a == "--endpoint") {
        endpoint = value();
      } else if (a == "--token") {
        token = value();
      } else if (a == "--state-dir") {
        state_dir = value();
      } else {
        break;
      }
    }
    if (i >= argc) throw UsageError("a command is needed");
    const auto command = commands.find(argv[i]);
    if (command == commands.end())
      throw UsageError(std::string("unknown command or flag \"") + argv[i] + "\"");
    if (token.empty()) token = read_token(state_dir);
    Client client(endpoint, token);
    return command->second(client, Args(argv + i + 1, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "thaw: " << e.what() << "\n\n" << kHelp;
    return kUsage;
  } catch (const Unreachable& e) {
    std::cerr << "thaw: " << e.what() << "\n";
    return kUnreachable;
  } catch (const Reported& e) {
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "thaw: " << e.what() << "\n";
    return kApiError;
  }
}
