#pragma once
// The AWS Lambda Runtime API for "provided" runtimes, served on the loopback
// of the instance's own network namespace. It is an adapter: HTTP calls from
// the runtime become frames on the same channel protocol the built-in runtimes
// speak (frame_channel.hpp), so the rest of thawd sees one kind of runtime.
//
//   GET  /2018-06-01/runtime/invocation/next          -> waits for an "invoke" frame
//   POST /2018-06-01/runtime/invocation/{id}/response -> "response" frame
//   POST /2018-06-01/runtime/invocation/{id}/error    -> "error" frame
//   POST /2018-06-01/runtime/init/error               -> "init_error" frame
// The first call to .../next also sends "ready": init is over.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/unique_fd.hpp"

namespace thaw::invoker {

class RuntimeApiServer {
 public:
  // Listens on 127.0.0.1:9001 inside the network namespace `net_ns_fd`;
  // `channel` is this server's end of the frame channel.
  RuntimeApiServer(int net_ns_fd, UniqueFd channel, std::string function_arn);
  ~RuntimeApiServer();
  RuntimeApiServer(const RuntimeApiServer&) = delete;
  RuntimeApiServer& operator=(const RuntimeApiServer&) = delete;

  std::string address() const { return "127.0.0.1:9001"; }

 private:
  void accept_loop();
  void serve(int fd);

  UniqueFd listener_;
  UniqueFd channel_;
  std::string function_arn_;
  std::mutex read_mutex_, write_mutex_, threads_mutex_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> ready_sent_{false};
  std::string current_request_id_;
  std::vector<int> connections_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace thaw::invoker
