#include "invoker/observability/function_logs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <utility>

#include "invoker/functions/function_config.hpp"
#include "thaw/error.hpp"

namespace fs = std::filesystem;

namespace thaw::invoker {

namespace {

// Lambda's function names: the only names that reach a path here.
void check_name(const std::string& function) {
  if (!is_function_name(function))
    throw Error("function logs: not a function name: \"" + function + "\"");
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : n;
}

std::string read_range(const std::string& path, uint64_t at, size_t n) {
  std::string out(n, '\0');
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  const auto got = pread(fd, out.data(), n, static_cast<off_t>(at));
  close(fd);
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

}  // namespace

FunctionLogs::FunctionLogs(std::string dir, uint64_t cap_bytes_per_function)
    : dir_(std::move(dir)), cap_(cap_bytes_per_function) {
  fs::create_directories(dir_);
  // What functions printed is theirs: no other host user reads it.
  fs::permissions(dir_, fs::perms::owner_all);
}

FunctionLogs::~FunctionLogs() {
  for (auto& [name, f] : files_)
    if (f.fd >= 0) close(f.fd);
}

std::string FunctionLogs::path(const std::string& function, const char* suffix) const {
  return dir_ + "/" + function + suffix;
}

FunctionLogs::Files& FunctionLogs::files(const std::string& function) {
  check_name(function);
  auto it = files_.find(function);
  if (it != files_.end()) return it->second;
  Files f;
  std::ifstream in(path(function, ".offsets"));
  in >> f.has_previous >> f.previous_start >> f.current_start;
  f.current_size = file_size(path(function, ".log"));
  return files_[function] = f;
}

void FunctionLogs::save_offsets(const std::string& function, const Files& f) const {
  // Written aside and renamed, so a crash leaves the old offsets or the new.
  const auto tmp = path(function, ".offsets.tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << f.has_previous << " " << f.previous_start << " " << f.current_start << "\n";
    if (!out) throw Error("function logs: cannot write " + tmp);
  }
  fs::rename(tmp, path(function, ".offsets"));
}

void FunctionLogs::append(const std::string& function, std::string_view text) {
  if (text.empty()) return;
  std::function<void()> observer;
  {
    std::lock_guard lock(mutex_);
    append_locked(function, text);
    observer = on_growth_;
  }
  if (observer) observer();
}

void FunctionLogs::on_growth(std::function<void()> observer) {
  std::lock_guard lock(mutex_);
  on_growth_ = std::move(observer);
}

bool FunctionLogs::grew_past(const std::string& function, uint64_t offset) {
  std::lock_guard lock(mutex_);
  if (stopping_) return true;
  const auto it = files_.find(function);
  return it == files_.end() ? files(function).end() > offset : it->second.end() > offset;
}

void FunctionLogs::append_locked(const std::string& function, std::string_view text) {
  auto& f = files(function);
  if (f.current_size > 0 && f.current_size + text.size() > cap_) {
    if (f.fd >= 0) close(std::exchange(f.fd, -1));
    fs::rename(path(function, ".log"), path(function, ".log.1"));
    f.has_previous = true;
    f.previous_start = f.current_start;
    f.current_start += f.current_size;
    f.current_size = 0;
    save_offsets(function, f);
  }
  const auto p = path(function, ".log");
  if (f.fd < 0) {
    f.fd = open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (f.fd < 0) throw_errno("function logs: open " + p);
  }
  size_t done = 0;
  while (done < text.size()) {
    const auto n = write(f.fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("function logs: write " + p);
    done += static_cast<size_t>(n);
  }
  f.current_size += text.size();
  grew_.notify_all();
}

std::string FunctionLogs::read_locked(const std::string& function, const Files& f, uint64_t from,
                                      size_t max_bytes) const {
  std::string out;
  if (f.has_previous && from < f.current_start) {
    const auto n = std::min<uint64_t>(max_bytes, f.current_start - from);
    out = read_range(path(function, ".log.1"), from - f.previous_start, n);
    from += out.size();
    if (from < f.current_start) return out;  // the older file was shorter than recorded
  }
  if (out.size() < max_bytes && from < f.end())
    out += read_range(path(function, ".log"), from - f.current_start,
                      std::min<uint64_t>(max_bytes - out.size(), f.end() - from));
  return out;
}

LogChunk FunctionLogs::read(const std::string& function, uint64_t from_offset, size_t max_bytes) {
  std::lock_guard lock(mutex_);
  const auto& f = files(function);
  LogChunk c;
  c.first_available_offset = f.first();
  const auto from = std::clamp(from_offset, f.first(), f.end());
  c.text = read_locked(function, f, from, max_bytes);
  c.next_offset = from + c.text.size();
  return c;
}

LogChunk FunctionLogs::read_tail(const std::string& function, size_t max_bytes) {
  std::lock_guard lock(mutex_);
  const auto& f = files(function);
  LogChunk c;
  c.first_available_offset = f.first();
  const auto from = f.end() - std::min<uint64_t>(max_bytes, f.end() - f.first());
  c.text = read_locked(function, f, from, max_bytes);
  c.next_offset = from + c.text.size();
  if (from > f.first()) {
    // Cut the partial first line.
    const auto nl = c.text.find('\n');
    c.text.erase(0, nl == std::string::npos ? c.text.size() : nl + 1);
  }
  return c;
}

bool FunctionLogs::wait_for_more(const std::string& function, uint64_t offset,
                                 std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  files(function);
  return grew_.wait_until(lock, deadline, [&] {
    const auto it = files_.find(function);
    return stopping_ || it == files_.end() || it->second.end() > offset;
  });
}

void FunctionLogs::stop_waiting() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  grew_.notify_all();
}

void FunctionLogs::remove(const std::string& function) {
  std::lock_guard lock(mutex_);
  check_name(function);
  if (const auto it = files_.find(function); it != files_.end() && it->second.fd >= 0)
    close(it->second.fd);
  for (const char* suffix : {".log", ".log.1", ".offsets"}) {
    std::error_code ec;
    fs::remove(path(function, suffix), ec);
  }
  files_.erase(function);
  grew_.notify_all();
}

}  // namespace thaw::invoker
