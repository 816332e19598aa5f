// The command table: what each command takes, and its help.
#include "commands.hpp"

#include "errors.hpp"

namespace thaw::cli {

const std::vector<CommandSpec>& all_commands() {
  static const std::vector<CommandSpec> commands = {
      {"deploy",
       "NAME DIR|ZIP --runtime R --handler H [--memory MB] [--timeout S] [--env K=V ...] "
       "[--no-snapshot]",
       "Create the function from a directory (zipped here) or a .zip file, at most 50 MB.\n"
       "If it exists, update its code, then its configuration: --memory and --timeout\n"
       "keep their values when not given; the environment becomes the --env given.\n"
       "Then wait up to 30 s for its snapshot, when thawd makes one. --no-snapshot turns\n"
       "snapshots off for the function: every cold start boots the runtime.",
       {"--runtime", "--handler", "--memory", "--timeout", "--env"},
       {"--no-snapshot"},
       2,
       2,
       &deploy},
      {"invoke",
       "NAME [JSON|-] [--async] [--log] [--start-mode cold|restore|warm]",
       "Invoke the function with the JSON event (default {}; - reads it from stdin) and\n"
       "print its answer; exit 4 when the function returned an error.\n"
       "  --async       queue the event (invocation type Event), print its request id\n"
       "  --log         print the end of the invocation's log (4 KB) to stderr\n"
       "  --start-mode  how the instance must start: cold, restore (from the snapshot)\n"
       "                or warm (an idle one); for operators and benchmarks",
       {"--start-mode"},
       {"--async", "--log"},
       1,
       2,
       &invoke},
      {"ls", "", "List the functions.", {}, {}, 0, 0, &list},
      {"get", "NAME", "Show the function's configuration.", {}, {}, 1, 1, &get},
      {"rm", "NAME", "Delete the function.", {}, {}, 1, 1, &remove},
      {"logs",
       "NAME [--follow]",
       "Print the end of the function's log (its last 64 KB). --follow keeps printing\n"
       "as lines arrive, until Ctrl-C.",
       {},
       {"--follow"},
       1,
       1,
       &logs},
      {"snapshots",
       "",
       "List the snapshots: function, size, age, restores served.",
       {},
       {},
       0,
       0,
       &snapshots},
      {"usage",
       "",
       "Invocations, errors, throttles, billed time and GB-seconds, per function.",
       {},
       {},
       0,
       0,
       &usage},
      {"instances",
       "",
       "The live instances: function, state, how each started, memory.",
       {},
       {},
       0,
       0,
       &instances},
      {"concurrency",
       "NAME [N | --delete]",
       "Show the function's reserved concurrency; N reserves N concurrent executions\n"
       "for it (0 throttles every invocation); --delete removes the reservation.",
       {},
       {"--delete"},
       1,
       2,
       &concurrency},
      {"health", "", "Ask thawd whether it is up.", {}, {}, 0, 0, &health},
  };
  return commands;
}

std::string function_path(const std::string& name) {
  return "/2015-03-31/functions/" + url_encode(name);
}

}  // namespace thaw::cli
