#pragma once
// thaw's channel to a runtime: length-prefixed frames over a stream socket
// that the instance inherits as fd 3. A frame is
//   u32 header length | u32 body length   (big-endian)
//   header: JSON object, with at least "type"
//   body:   raw bytes (event or response payload; binary-safe)
// The runtime end is a plain socket, so a restored instance can be handed a
// fresh one (the protocol has no state beyond the frame in flight).

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "sandbox/unique_fd.hpp"

namespace thaw::invoker {

struct Frame {
  nlohmann::json header;
  std::string body;
};

enum class ReceiveStatus { Frame, Closed, TimedOut, TooLarge };

struct Received {
  ReceiveStatus status = ReceiveStatus::Closed;
  Frame frame;
  uint64_t announced_body_bytes = 0;  // for TooLarge
};

class FrameChannel {
 public:
  explicit FrameChannel(UniqueFd socket) : socket_(std::move(socket)) {}
  int fd() const { return socket_.get(); }

  // Returns false when the peer is gone.
  bool send(const nlohmann::json& header, std::string_view body = {});

  // Waits for one frame until `deadline`. While waiting, `side_fd` (the
  // instance's log pipe) is drained into `on_side_data`, so a chatty function
  // never blocks on a full pipe. Bodies over `max_body` are not read.
  Received receive(std::chrono::steady_clock::time_point deadline, uint64_t max_body, int side_fd,
                   const std::function<void(std::string_view)>& on_side_data);

 private:
  bool read_exact(char* out, size_t n, std::chrono::steady_clock::time_point deadline, int side_fd,
                  const std::function<void(std::string_view)>& on_side_data, bool& timed_out);
  UniqueFd socket_;
};

// Reads whatever `fd` holds now, without blocking.
void drain_available(int fd, const std::function<void(std::string_view)>& sink);

}  // namespace thaw::invoker
