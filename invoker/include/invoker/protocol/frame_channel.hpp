#pragma once
// thaw's channel to a runtime: length-prefixed frames over two pipes that the
// instance inherits, fd 3 to read from thawd and fd 4 to write to it. Pipes,
// not a socket: CRIU hands a restored process fresh pipes in place of the
// dumped ones (--inherit-fd), while a socket whose peer lives outside the
// instance cannot be dumped at all. A frame is
//   u32 header length | u32 body length   (big-endian)
//   header: JSON object, with at least "type"
//   body:   raw bytes (event or response payload; binary-safe)
// The protocol has no state beyond the frame in flight.

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "thaw/unique_fd.hpp"

namespace thaw::invoker {

struct Frame {
  std::string type;  // the header's "type", a string; empty unless the frame was read whole
  nlohmann::json header;
  std::string body;
};

// Malformed: a header that is no JSON object with a string "type", or one
// longer than kMaxFrameHeaderBytes. The runtime broke the protocol.
enum class ReceiveStatus { Frame, Closed, TimedOut, TooLarge, Malformed, Stopped };
enum class SendStatus { Sent, Closed, TimedOut };

constexpr uint32_t kMaxFrameHeaderBytes = 1u << 20;

// Where a channel puts what arrives on the instance's output while it waits.
using OutputSink = std::function<void(std::string_view)>;

struct Received {
  ReceiveStatus status = ReceiveStatus::Closed;
  Frame frame;
  uint64_t announced_body_bytes = 0;  // for TooLarge
};

class FrameChannel {
 public:
  // `in` is read from, `out` written to (they may be one socket, dup'ed).
  FrameChannel(UniqueFd in, UniqueFd out) : in_(std::move(in)), out_(std::move(out)) {}
  int in_fd() const { return in_.get(); }

  // Writes one frame, giving up at `deadline`: the peer holds the other end
  // and may stop reading (or shrink the pipe) at any moment. Meanwhile
  // `side_fd` is drained into `on_side_data`, so a runtime that logs while
  // it reads a large event never waits on thawd while thawd waits on it.
  // The write end must be non-blocking (make_channel_pipes makes thawd's so).
  SendStatus send(const nlohmann::json& header, std::string_view body,
                  std::chrono::steady_clock::time_point deadline, int side_fd = -1,
                  const OutputSink& on_side_data = {});
  // For the runtime's side of the channel, whose peer is thawd: blocking.
  bool send(const nlohmann::json& header, std::string_view body = {});

  // Waits for one frame until `deadline`. While waiting, `side_fd` (the
  // instance's log pipe) is drained into `on_side_data`, so a chatty function
  // never blocks on a full pipe. Bodies over `max_body` are not read.
  // `stop_fd` readable (a process's pidfd: it exited) ends the wait with
  // Stopped, as long as no byte of the frame has come.
  Received receive(std::chrono::steady_clock::time_point deadline, uint64_t max_body, int side_fd,
                   const OutputSink& on_side_data, int stop_fd = -1);

 private:
  enum class ReadEnd { Done, Closed, TimedOut, Stopped };
  ReadEnd read_exact(char* out, size_t n, std::chrono::steady_clock::time_point deadline,
                     int side_fd, const OutputSink& on_side_data, int stop_fd = -1);
  UniqueFd in_;
  UniqueFd out_;
};

// The two pipes of a channel: the runtime reads fd 3 and writes fd 4.
struct ChannelPipes {
  UniqueFd thawd_in, thawd_out;      // thawd's ends
  UniqueFd runtime_in, runtime_out;  // the instance's ends
};
// Close-on-exec; thawd's write end non-blocking; throws Error.
ChannelPipes make_channel_pipes();
constexpr int kRuntimeChannelIn = 3;
constexpr int kRuntimeChannelOut = 4;

// Reads whatever `fd` holds now, without blocking.
void drain_available(int fd, const OutputSink& sink);

}  // namespace thaw::invoker
