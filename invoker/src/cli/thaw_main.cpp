// thaw: the command-line client of thawd. The commands live beside it; this
// file picks one and turns its failure into a message and an exit code.
#include <iostream>

#include "commands.hpp"
#include "errors.hpp"
#include "help.hpp"
#include "invoker/observability/system_facts.hpp"

using namespace thaw::cli;

int main(int argc, char** argv) {
  const CommandSpec* command = nullptr;
  try {
    const auto [options, line] = parse_arguments(all_commands(), {argv + 1, argv + argc}, command);
    if (options.version) {
      std::cout << thaw::invoker::format_version_report("thaw",
                                                        thaw::invoker::gather_system_facts());
      return kOk;
    }
    if (!command) {
      if (!options.help) throw UsageError("a command is needed");
      std::cout << help_text(all_commands());
      return kOk;
    }
    if (options.help) {
      std::cout << command_help(*command);
      return kOk;
    }
    Client thawd(endpoint_of(options), token_of(options));
    return command->run(thawd, line);
  } catch (const UsageError& e) {
    std::cerr << "thaw: " << e.what() << "\n"
              << (command ? usage_line(*command) + "\n" : "") << "(thaw --help lists "
              << (command ? "every option" : "the commands") << ")\n";
    return kUsage;
  } catch (const ThawdError& e) {
    std::cerr << "thaw: " << e.type << ": " << e.what() << "\n";
    return kThawdError;
  } catch (const Unreachable& e) {
    std::cerr << "thaw: " << e.what() << "\n";
    return kUnreachable;
  } catch (const std::exception& e) {
    std::cerr << "thaw: " << e.what() << "\n";
    return kThawdError;
  }
}
