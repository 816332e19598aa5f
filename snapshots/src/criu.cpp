#include "snapshots/criu.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "sandbox/error.hpp"
#include "sandbox/unique_fd.hpp"
#include "snapshots/criu_environment.hpp"

extern char** environ;

namespace thaw::snapshots {

namespace {

// Where descriptors for --inherit-fd land in criu: high enough not to clash
// with the restored process's own descriptors (Node.js uses a dozen or more).
constexpr int kFirstPassedFd = 200;

struct RunResult {
  int status = -1;
  std::string output;
};

struct Spawned {
  pid_t pid = -1;
  UniqueFd output;  // the child's stdout and stderr
};

// Starts argv with stdout and stderr into a pipe; `pass` are descriptors
// placed at kFirstPassedFd, kFirstPassedFd + 1, ... in the child.
Spawned spawn_captured(const std::vector<std::string>& argv, const std::vector<int>& pass) {
  // The child's dup2s run in order, so a descriptor to pass that already sits
  // in the target range (a busy thawd has hundreds open) could be overwritten
  // by an earlier dup2 before it is copied: move such ones above the range.
  const int end = kFirstPassedFd + static_cast<int>(pass.size());
  std::vector<UniqueFd> moved;
  std::vector<int> sources;
  for (int fd : pass) {
    if (fd < kFirstPassedFd || fd >= end) {
      sources.push_back(fd);
      continue;
    }
    moved.emplace_back(fcntl(fd, F_DUPFD_CLOEXEC, end));
    if (!moved.back()) throw_errno("criu: dup");
    sources.push_back(moved.back().get());
  }
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw_errno("criu: pipe");
  Spawned child;
  child.output.reset(pipefd[0]);
  UniqueFd write_end(pipefd[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  for (size_t i = 0; i < sources.size(); ++i)
    posix_spawn_file_actions_adddup2(&actions, sources[i], kFirstPassedFd + static_cast<int>(i));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int rc = posix_spawn(&child.pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw_errno("criu: spawn " + argv[0], rc);
  return child;
}

// Reads the child's output to its end and waits for its exit.
RunResult collect(Spawned& child) {
  RunResult result;
  char buf[4096];
  ssize_t n;
  while ((n = read(child.output.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) result.output.append(buf, static_cast<size_t>(n));
  child.output.reset();
  int status;
  while (waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
  }
  child.pid = -1;
  result.status = status;
  return result;
}

RunResult run(const std::vector<std::string>& argv, const std::vector<int>& pass = {}) {
  auto child = spawn_captured(argv, pass);
  return collect(child);
}

bool succeeded(const RunResult& r) {
  return WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
}

std::string error_lines(const std::string& log_path, const std::string& fallback) {
  std::ifstream in(log_path);
  std::string line, out;
  while (std::getline(in, line))
    if (line.find("Error") != std::string::npos) out += (out.empty() ? "" : "; ") + line;
  if (out.empty()) out = fallback;
  return out;
}

// Errors only, unless THAW_KEEP_CRIU_LOGS asks for logs to study: then CRIU's
// timestamped debug log, which is how restore time is broken down.
const char* log_level() {
  return getenv("THAW_KEEP_CRIU_LOGS") ? "-v4" : "-v2";
}

std::string find_criu() {
  for (const char* dir : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin"}) {
    const std::string path = std::string(dir) + "/criu";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

}  // namespace

bool version_at_least(const std::string& version, const std::string& minimum) {
  std::istringstream a(version), b(minimum);
  for (;;) {
    std::string x, y;
    const bool hx = static_cast<bool>(std::getline(a, x, '.'));
    const bool hy = static_cast<bool>(std::getline(b, y, '.'));
    if (!hy) return true;
    const int vx = hx ? std::atoi(x.c_str()) : 0, vy = std::atoi(y.c_str());
    if (vx != vy) return vx > vy;
  }
}

bool CriuInfo::usable() const {
  return !path.empty() && version_at_least(version, "4.2") && check_passed;
}

CriuInfo probe_criu() {
  CriuInfo info;
  info.path = find_criu();
  if (info.path.empty()) return info;
  const auto v = run({info.path, "--version"});
  std::istringstream in(v.output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Version: ", 0) == 0) info.version = line.substr(9);
  const auto check = run({info.path, "check"});
  info.check_passed = succeeded(check);
  if (!info.check_passed) info.check_output = check.output;
  return info;
}

void dump(const std::string& criu, const DumpRequest& r) {
  const auto work = r.work_dir.empty() ? r.images_dir : r.work_dir;
  std::vector<std::string> argv = {criu, "dump",       "-t",       std::to_string(r.pid),
                                   "-D", r.images_dir, "-W",       work,
                                   "-o", "dump.log",   log_level()};
  for (const auto& [path, key] : r.external_mounts) {
    argv.push_back("--external");
    argv.push_back("mnt[" + path + "]:" + key);
  }
  if (r.leave_running) argv.push_back("--leave-running");
  if (r.tcp_connections) argv.push_back("--tcp-established");
  argv.insert(argv.end(), r.extra_args.begin(), r.extra_args.end());
  const auto result = run(argv);
  if (!succeeded(result))
    throw Error("criu dump of pid " + std::to_string(r.pid) + ": " +
                error_lines(work + "/dump.log", result.output));
}

RestoreRun::RestoreRun(const std::string& criu, const RestoreRequest& r)
    : images_dir_(r.images_dir),
      work_dir_(r.work_dir.empty() ? r.images_dir : r.work_dir),
      pidfile_(work_dir_ + "/restored.pid") {
  unlink(pidfile_.c_str());
  std::vector<std::string> argv = {
      criu, "restore",     "-D",        r.images_dir,         "-W",        work_dir_,
      "-o", "restore.log", log_level(), "--restore-detached", "--pidfile", pidfile_};
  if (!r.root.empty()) {
    argv.push_back("--root");
    argv.push_back(r.root);
  }
  for (const auto& [key, path] : r.mount_map) {
    argv.push_back("--external");
    argv.push_back("mnt[" + key + "]:" + path);
  }
  if (const auto yard = cgroup_yard(); !yard.empty()) {
    argv.push_back("--cgroup-yard");
    argv.push_back(yard);
  }
  if (r.tcp_connections) argv.push_back("--tcp-established");
  std::vector<int> pass;
  for (const auto& f : r.inherit) {
    argv.push_back("--inherit-fd");
    argv.push_back("fd[" + std::to_string(kFirstPassedFd + static_cast<int>(pass.size())) +
                   "]:" + f.dumped_file);
    pass.push_back(f.fd);
  }
  argv.insert(argv.end(), r.extra_args.begin(), r.extra_args.end());
  auto child = spawn_captured(argv, pass);
  criu_pid_ = child.pid;
  output_ = std::move(child.output);
}

RestoreRun::~RestoreRun() {
  if (criu_pid_ < 0) return;
  try {
    finish();
  } catch (...) {
    // Whoever cared about the outcome asked finish(); this only reaps criu.
  }
}

pid_t RestoreRun::finish() {
  if (criu_pid_ >= 0) {
    Spawned child{criu_pid_, std::move(output_)};
    criu_pid_ = -1;
    const auto result = collect(child);
    if (!succeeded(result))
      failure_ = "criu restore from " + images_dir_ + ": " +
                 error_lines(work_dir_ + "/restore.log", result.output);
  }
  if (!failure_.empty()) throw Error(failure_);
  return restored_pid();
}

bool RestoreRun::exited() {
  if (criu_pid_ < 0) return true;
  siginfo_t info{};
  // WNOWAIT: finish() reaps it and reads its output.
  if (waitid(P_PID, static_cast<id_t>(criu_pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return true;
  return info.si_pid != 0;
}

pid_t RestoreRun::restored_pid() const {
  std::ifstream in(pidfile_);
  pid_t pid = -1;
  in >> pid;
  if (pid <= 0) throw Error("criu restore: no pid in " + pidfile_);
  return pid;
}

pid_t restore(const std::string& criu, const RestoreRequest& r) {
  RestoreRun run(criu, r);
  return run.finish();
}

}  // namespace thaw::snapshots
