#pragma once
// The AWS Lambda Runtime API for "provided" runtimes. It runs inside the
// instance (thaw-runtime-api, runtime_api_main.cpp), on 127.0.0.1:9001 of the
// instance's own network namespace: HTTP calls from the function's bootstrap
// become frames on the channel the built-in runtimes speak (frame_channel.hpp),
// so thawd sees one kind of runtime, never parses a function's HTTP itself, and
// a snapshot holds the server with the bootstrap's connection to it.
//
//   GET  /2018-06-01/runtime/invocation/next          -> waits for an "invoke" frame
//   POST /2018-06-01/runtime/invocation/{id}/response -> "response" frame
//   POST /2018-06-01/runtime/invocation/{id}/error    -> "error" frame
//   POST /2018-06-01/runtime/init/error               -> "init_error" frame
// The first call to .../next also sends "ready": init is over. While the
// bootstrap waits there, "prepare_snapshot" is answered "snapshot_ready" and
// "restored" is answered "ready" (a provided runtime has no hooks to run).

#include <cstdint>
#include <mutex>
#include <string>

#include "invoker/protocol/frame_channel.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::invoker {

constexpr uint16_t kRuntimeApiPort = 9001;  // where Lambda's own runtimes find it

// A listening socket on 127.0.0.1:kRuntimeApiPort in this network namespace.
UniqueFd listen_for_runtime_api();

class RuntimeApiServer {
 public:
  RuntimeApiServer(UniqueFd listener, FrameChannel channel);
  RuntimeApiServer(const RuntimeApiServer&) = delete;
  RuntimeApiServer& operator=(const RuntimeApiServer&) = delete;

  // Accepts connections, one thread each, until the listener fails; the
  // process ends when thawd closes the channel.
  void run();

 private:
  void serve(int fd);
  // The next "invoke" frame, answering control frames on the way; false when
  // the channel closed.
  bool next_invocation(Frame& invoke);

  UniqueFd listener_;
  FrameChannel channel_;
  std::mutex read_mutex_, write_mutex_;
  bool ready_sent_ = false;         // under write_mutex_
  std::string current_request_id_;  // under write_mutex_
};

}  // namespace thaw::invoker
