// thaw logs: a function's log, once or followed.
#include <iostream>
#include <nlohmann/json.hpp>

#include "answers.hpp"
#include "commands.hpp"
#include "errors.hpp"
#include "output.hpp"

namespace thaw::cli {

namespace {

using json = nlohmann::json;

// thawd holds a follow request this long when there is nothing new...
constexpr int kLongPollSeconds = 20;
// ...so the answer may take that long, and then some.
constexpr std::chrono::seconds kLongPollTimeout{kLongPollSeconds + 30};

// A followed chunk: as text, or as one line of JSON each with --json.
void show(const json& chunk, uint64_t asked_from, bool as_json) {
  if (as_json) {
    std::cout << chunk.dump() << "\n" << std::flush;
    return;
  }
  // thawd keeps a bounded log: what was dropped before it could be read is said.
  const auto first = chunk.value("FirstAvailableOffset", uint64_t{0});
  if (first > asked_from)
    std::cerr << "thaw: " << first - asked_from
              << " bytes of log were dropped before they could be read\n";
  std::cout << chunk.value("Text", "") << std::flush;
}

}  // namespace

int logs(Client& thawd, const CommandLine& line) {
  const auto path = "/thaw/v1/functions/" + url_encode(line.args[0]) + "/logs";
  const bool follow = line.has("--follow");
  // Following ends with Ctrl-C (or SIGTERM): a normal end, exit code 0.
  if (follow) thawd.stop_on_signals();
  try {
    // Without an offset thawd answers the log's tail.
    auto chunk = get_json(thawd, path);
    if (line.json && !follow)
      print_json(chunk);
    else
      show(chunk, chunk.value("FirstAvailableOffset", uint64_t{0}), line.json);
    // Until Ctrl-C: stop_on_signals makes the next request throw Interrupted.
    if (follow) {
      for (;;) {
        const auto from = chunk.value("NextOffset", uint64_t{0});
        chunk = json_of(thawd.request(
            http::verb::get,
            path + "?offset=" + std::to_string(from) + "&wait=" + std::to_string(kLongPollSeconds),
            "", {}, kLongPollTimeout));
        show(chunk, from, line.json);
      }
    }
  } catch (const Interrupted&) {
  }
  return kOk;
}

}  // namespace thaw::cli
