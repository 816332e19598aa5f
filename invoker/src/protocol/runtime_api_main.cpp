// thaw-runtime-api: what a "provided" instance runs first. It opens the
// Runtime API on 127.0.0.1:9001, forks the server (runtime_api_server.hpp),
// which keeps the channel to thawd (fd 3 in, fd 4 out), and becomes the
// function's bootstrap itself: the bootstrap stays the instance's first
// process, so its exit status is the instance's, as without thaw in between.
//
//   thaw-runtime-api /var/task/bootstrap [ARGS...]
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "invoker/protocol/frame_messages.hpp"
#include "invoker/protocol/json_text.hpp"
#include "invoker/protocol/runtime_api_server.hpp"
#include "thaw/error.hpp"

using namespace thaw;
using namespace thaw::invoker;

namespace {

[[noreturn]] void serve(UniqueFd listener) {
  RuntimeApiServer server(std::move(listener),
                          FrameChannel(UniqueFd(kRuntimeChannelIn), UniqueFd(kRuntimeChannelOut)));
  server.run();
  _exit(1);  // the listener failed
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: thaw-runtime-api BOOTSTRAP [ARGS...]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a bootstrap hanging up must not end the server
  UniqueFd listener;
  try {
    listener = listen_for_runtime_api();
  } catch (const Error& e) {
    std::fprintf(stderr, "thaw-runtime-api: %s\n", e.what());
    return 1;
  }
  const pid_t server = fork();
  if (server < 0) {
    std::perror("thaw-runtime-api: fork");
    return 1;
  }
  if (server == 0) serve(std::move(listener));
  signal(SIGPIPE, SIG_DFL);
  listener.reset();
  const std::string api = "127.0.0.1:" + std::to_string(kRuntimeApiPort);
  setenv("AWS_LAMBDA_RUNTIME_API", api.c_str(), 1);
  // The channel belongs to the server; the bootstrap gets it only to report
  // that it could not start (close-on-exec).
  const int report = fcntl(kRuntimeChannelOut, F_DUPFD_CLOEXEC, 10);
  close(kRuntimeChannelIn);
  close(kRuntimeChannelOut);
  execv(argv[1], argv + 1);
  const int err = errno;
  const std::string message =
      std::string("Couldn't find valid bootstrap(s): [") + argv[1] + "]: " + std::strerror(err);
  FrameChannel channel(UniqueFd(-1), UniqueFd(report));
  channel.send({{"type", frames::kInitError}},
               json_text(nlohmann::json{{"errorType", "Runtime.InvalidEntrypoint"},
                                        {"errorMessage", message}}));
  std::fprintf(stderr, "thaw-runtime-api: %s\n", message.c_str());
  return 127;
}
