#include "invoker/protocol/frame_channel.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "invoker/protocol/json_text.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

uint32_t load_be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void store_be32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

int ms_until(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 60000));
}

// Reads what `side_fd` holds into `sink`; -1 once it is closed.
int drain_side(int side_fd, const OutputSink& sink) {
  char buf[65536];
  const ssize_t r = read(side_fd, buf, sizeof buf);
  if (r > 0 && sink) sink(std::string_view(buf, static_cast<size_t>(r)));
  if (r == 0) return -1;  // the instance closed its output
  return side_fd;
}

}  // namespace

ChannelPipes make_channel_pipes() {
  int down[2], up[2];
  if (pipe2(down, O_CLOEXEC) != 0) throw_errno("channel: pipe");
  if (pipe2(up, O_CLOEXEC) != 0) {
    const int err = errno;
    close(down[0]);
    close(down[1]);
    throw_errno("channel: pipe", err);
  }
  // Non-blocking on thawd's side only: the two ends of a pipe are separate
  // open files, so the runtime's ends keep the flags it expects.
  if (fcntl(down[1], F_SETFL, O_NONBLOCK) != 0) {
    const int err = errno;
    for (int fd : {down[0], down[1], up[0], up[1]}) close(fd);
    throw_errno("channel: make thawd's end non-blocking", err);
  }
  ChannelPipes p;
  p.runtime_in.reset(down[0]);
  p.thawd_out.reset(down[1]);
  p.thawd_in.reset(up[0]);
  p.runtime_out.reset(up[1]);
  return p;
}

void drain_available(int fd, const OutputSink& sink) {
  if (fd < 0) return;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP))) return;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return;
    sink(std::string_view(buf, static_cast<size_t>(n)));
  }
}

namespace {

std::string frame_prefix(const std::string& header, std::string_view body) {
  std::string prefix(8, '\0');
  store_be32(prefix.data(), static_cast<uint32_t>(header.size()));
  store_be32(prefix.data() + 4, static_cast<uint32_t>(body.size()));
  return prefix;
}

}  // namespace

bool FrameChannel::send(const nlohmann::json& header, std::string_view body) {
  return send(header, body, std::chrono::steady_clock::time_point::max()) == SendStatus::Sent;
}

SendStatus FrameChannel::send(const nlohmann::json& header, std::string_view body,
                              std::chrono::steady_clock::time_point deadline, int side_fd,
                              const OutputSink& on_side_data) {
  const auto h = json_text(header);
  const auto prefix = frame_prefix(h, body);
  for (std::string_view part : {std::string_view(prefix), std::string_view(h), body}) {
    while (!part.empty()) {
      const ssize_t w = ::write(out_.get(), part.data(), part.size());
      if (w > 0) {
        part.remove_prefix(static_cast<size_t>(w));
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno != EAGAIN) return SendStatus::Closed;
      // The pipe is full: wait for room, the deadline or the instance's output.
      const int wait_ms = ms_until(deadline);
      if (wait_ms == 0) return SendStatus::TimedOut;
      pollfd p[2] = {{out_.get(), POLLOUT, 0}, {side_fd, POLLIN, 0}};
      const int rc = poll(p, side_fd >= 0 ? 2 : 1, wait_ms);
      if (rc < 0 && errno != EINTR) return SendStatus::Closed;
      if (rc > 0 && side_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP)))
        side_fd = drain_side(side_fd, on_side_data);
      if (rc > 0 && (p[0].revents & (POLLERR | POLLHUP)) && !(p[0].revents & POLLOUT))
        return SendStatus::Closed;
    }
  }
  return SendStatus::Sent;
}

FrameChannel::ReadEnd FrameChannel::read_exact(char* out, size_t n,
                                               std::chrono::steady_clock::time_point deadline,
                                               int side_fd, const OutputSink& on_side_data,
                                               int stop_fd) {
  const size_t wanted = n;
  while (n > 0) {
    const int wait_ms = ms_until(deadline);
    if (wait_ms == 0) return ReadEnd::TimedOut;
    // Only before the first byte: a frame that has begun is read whole.
    const int stop = n == wanted ? stop_fd : -1;
    pollfd p[3] = {{in_.get(), POLLIN, 0}, {side_fd, POLLIN, 0}, {stop, POLLIN, 0}};
    const int rc = poll(p, 3, wait_ms);
    if (rc < 0 && errno != EINTR) return ReadEnd::Closed;
    if (rc <= 0) continue;
    if (side_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP)))
      side_fd = drain_side(side_fd, on_side_data);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t r = ::read(in_.get(), out, n);
      if (r == 0) return ReadEnd::Closed;
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return ReadEnd::Closed;
      }
      out += r;
      n -= static_cast<size_t>(r);
      continue;
    }
    if (stop >= 0 && p[2].revents) return ReadEnd::Stopped;
  }
  return ReadEnd::Done;
}

namespace {

ReceiveStatus status_of(bool timed_out) {
  return timed_out ? ReceiveStatus::TimedOut : ReceiveStatus::Closed;
}

}  // namespace

Received FrameChannel::receive(std::chrono::steady_clock::time_point deadline, uint64_t max_body,
                               int side_fd, const OutputSink& on_side_data, int stop_fd) {
  Received out;
  char prefix[8];
  if (const auto end = read_exact(prefix, 8, deadline, side_fd, on_side_data, stop_fd);
      end != ReadEnd::Done) {
    out.status =
        end == ReadEnd::Stopped ? ReceiveStatus::Stopped : status_of(end == ReadEnd::TimedOut);
    return out;
  }
  const uint32_t header_len = load_be32(prefix), body_len = load_be32(prefix + 4);
  if (header_len > kMaxFrameHeaderBytes) {
    out.status = ReceiveStatus::Malformed;
    return out;
  }
  std::string header(header_len, '\0');
  if (const auto end = read_exact(header.data(), header_len, deadline, side_fd, on_side_data);
      end != ReadEnd::Done) {
    out.status = status_of(end == ReadEnd::TimedOut);
    return out;
  }
  out.frame.header = nlohmann::json::parse(header, nullptr, false);
  auto type = string_field(out.frame.header, "type");
  if (type.empty()) {
    out.status = ReceiveStatus::Malformed;
    return out;
  }
  if (body_len > max_body) {
    out.status = ReceiveStatus::TooLarge;
    out.announced_body_bytes = body_len;
    return out;
  }
  out.frame.body.resize(body_len);
  if (const auto end = read_exact(out.frame.body.data(), body_len, deadline, side_fd, on_side_data);
      end != ReadEnd::Done) {
    out.status = status_of(end == ReadEnd::TimedOut);
    return out;
  }
  // Only a frame read whole has a type: callers need not ask for the status too.
  out.frame.type = std::move(type);
  out.status = ReceiveStatus::Frame;
  return out;
}

}  // namespace thaw::invoker
