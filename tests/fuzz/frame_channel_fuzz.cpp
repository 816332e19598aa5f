// The frame channel's reader on bytes a runtime wrote: every outcome is a
// status (a frame, closed, malformed, too large), never a throw or a hang.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>

#include "invoker/protocol/frame_channel.hpp"

using namespace thaw::invoker;
using thaw::UniqueFd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 60000) return 0;  // what one pipe holds without a reader
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return 0;
  if (write(p[1], data, size) != static_cast<ssize_t>(size)) __builtin_trap();
  close(p[1]);
  FrameChannel channel(UniqueFd(p[0]), UniqueFd(open("/dev/null", O_WRONLY | O_CLOEXEC)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (int frames = 0; frames < 64; ++frames) {
    const auto got = channel.receive(deadline, 1 << 20, -1, {});
    if (got.status != ReceiveStatus::Frame) break;
    if (got.frame.type.empty()) __builtin_trap();  // a frame always has its type
  }
  return 0;
}
