#include "snapshots/criu.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sandbox/namespace_owner.hpp"
#include "snapshots/criu_environment.hpp"
#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

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
// `options`: a socket placed at kOptionsFd, named to criu in its environment
// (a spare waits for its options there).
// `owner`: the uid that owns the namespaces criu works on (0: root), as
// its effective uid (namespace_owner.hpp).
Spawned spawn_captured(const std::vector<std::string>& argv, const std::vector<int>& pass,
                       uid_t owner, std::pair<int, int> options = {-1, -1}) {
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
  // thawd's own environment, and for a spare the name of its options socket.
  std::vector<char*> env;
  std::string options_env;
  if (options.first >= 0) {
    posix_spawn_file_actions_adddup2(&actions, options.first, options.second);
    options_env = "THAW_CRIU_OPTIONS_FD=" + std::to_string(options.second);
    for (char** e = environ; *e; ++e) env.push_back(*e);
    env.push_back(options_env.data());
    env.push_back(nullptr);
    // A spare may wait for minutes: none of thawd's descriptors that lack
    // CLOEXEC (Asio's sockets do) may stay open in it, keeping a client's
    // connection or the listening socket alive, or taking a number its
    // options later need.
    posix_spawn_file_actions_addclosefrom_np(&actions, options.second + 1);
  } else {
    posix_spawn_file_actions_addclosefrom_np(&actions, end);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc;
  {
    sandbox::ActingAsOwner as_owner(owner, owner, sandbox::ActingAsOwner::Exec::KeepCapabilities);
    rc = posix_spawn(&child.pid, args[0], &actions, nullptr, args.data(),
                     env.empty() ? environ : env.data());
  }
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
  auto child = spawn_captured(argv, pass, 0);
  return collect(child);
}

bool succeeded(const RunResult& r) {
  return WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
}

// Probes run a binary an operator may have named wrongly: a bounded wait and
// output, so that none can hold thawd's start-up.
constexpr std::chrono::milliseconds kProbeTimeout{10000};
constexpr size_t kProbeOutputCap = 64 << 10;

// Like collect(), bounded: once `deadline` passes, the child is killed and
// Error says what (`what`) did not end within `limit`; output beyond
// kProbeOutputCap is dropped. (A child that leaves one of its own holding
// its output runs into the deadline too.)
RunResult collect_bounded(Spawned& child, std::chrono::steady_clock::time_point deadline,
                          const std::string& what, std::chrono::milliseconds limit) {
  UniqueFd exited(static_cast<int>(syscall(SYS_pidfd_open, child.pid, 0)));
  RunResult result;
  const auto take = [&](ssize_t n, const char* buf) {
    const auto room = kProbeOutputCap - std::min(kProbeOutputCap, result.output.size());
    result.output.append(buf, std::min(room, static_cast<size_t>(n)));
  };
  bool ended = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    pollfd p[2] = {{child.output.get(), POLLIN, 0}, {exited.get(), POLLIN, 0}};
    const int ready =
        poll(p, exited.get() >= 0 ? 2 : 1, static_cast<int>(std::max<int64_t>(left, 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;  // the deadline
    if (p[0].revents) {
      const ssize_t n = read(child.output.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        take(n, buf);
        continue;
      }
      // End of the output: the child is exiting, or left it to one of its own.
      if (exited.get() < 0) {
        ended = true;
        break;
      }
      p[0].fd = -1;
    }
    if (exited.get() >= 0 && (p[1].revents || p[0].fd < 0)) {
      // Exited, or about to: what a child of its own (a half-restored task
      // of a killed criu) keeps open of its output is not waited for.
      if (!p[1].revents) {
        pollfd e = {exited.get(), POLLIN, 0};
        if (poll(&e, 1, static_cast<int>(std::max<int64_t>(left, 0))) <= 0) break;
      }
      const int flags = fcntl(child.output.get(), F_GETFL);
      fcntl(child.output.get(), F_SETFL, flags | O_NONBLOCK);
      for (ssize_t n; (n = read(child.output.get(), buf, sizeof buf)) > 0;) take(n, buf);
      ended = true;
      break;
    }
  }
  if (!ended) kill(child.pid, SIGKILL);
  child.output.reset();
  while (waitpid(child.pid, &result.status, 0) < 0 && errno == EINTR) {
  }
  child.pid = -1;
  if (!ended)
    throw Error(what + " did not end within " + std::to_string(limit.count() / 1000) + " s");
  return result;
}

// Like run(), bounded: once `limit` passes, the binary is killed.
RunResult run_bounded(const std::vector<std::string>& argv, std::chrono::milliseconds limit,
                      uid_t owner = 0) {
  auto child = spawn_captured(argv, {}, owner);
  return collect_bounded(child, std::chrono::steady_clock::now() + limit, argv[0] + " " + argv[1],
                         limit);
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
    std::string path = std::string(dir) + "/criu";
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
  return !path.empty() && version_at_least(version, kMinCriuVersion) && check_passed;
}

namespace {

std::string version_in(const std::string& output) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("Version: ", 0) == 0) return line.substr(9);
  return "";
}

}  // namespace

std::string criu_version_of(const std::string& path) {
  return version_in(run({path, "--version"}).output);
}

CriuInfo probe_criu(const std::string& path) {
  CriuInfo info;
  if (path.empty()) {
    info.path = find_criu();
  } else if (struct stat st{}; stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
                               access(path.c_str(), X_OK) != 0) {
    info.check_output = path + " is not an executable file";
  } else {
    info.path = path;
  }
  if (info.path.empty()) return info;
  try {
    info.version = version_in(run_bounded({info.path, "--version"}, kProbeTimeout).output);
    const auto check = run_bounded({info.path, "check"}, kProbeTimeout);
    info.check_passed = succeeded(check);
    if (!info.check_passed)
      info.check_output =
          !check.output.empty()
              ? check.output
              : info.path + " check failed (" +
                    (WIFEXITED(check.status)
                         ? "exit status " + std::to_string(WEXITSTATUS(check.status))
                         : "signal " + std::to_string(WTERMSIG(check.status))) +
                    ")";
  } catch (const Error& e) {
    info.check_output = e.what();  // it could not be started, or did not end
  }
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
  // An instance's tree is the function's to shape: the dump may not take
  // the snapshot worker with it.
  const auto result = run_bounded(argv, r.timeout, r.owner);
  if (!succeeded(result))
    throw Error("criu dump of pid " + std::to_string(r.pid) + ": " +
                error_lines(work + "/dump.log", result.output));
}

namespace {

// What every restore from images_dir has in common (all a spare knows).
std::vector<std::string> common_restore_args(const std::string& criu, const std::string& images_dir,
                                             const std::string& work_dir) {
  std::vector<std::string> argv = {criu,        "restore",
                                   "-D",        images_dir,
                                   "-W",        work_dir,
                                   "-o",        "restore.log",
                                   log_level(), "--restore-detached",
                                   "--pidfile", work_dir + "/restored.pid"};
  if (const auto yard = cgroup_yard(); !yard.empty()) {
    argv.push_back("--cgroup-yard");
    argv.push_back(yard);
  }
  return argv;
}

// The rest; `pass` gets the descriptors, which criu finds at kFirstPassedFd on.
std::vector<std::string> own_restore_args(const RestoreRequest& r, std::vector<int>& pass) {
  std::vector<std::string> argv;
  if (!r.root.empty()) {
    argv.push_back("--root");
    argv.push_back(r.root);
  }
  for (const auto& [key, path] : r.mount_map) {
    argv.push_back("--external");
    argv.push_back("mnt[" + key + "]:" + path);
  }
  if (r.tcp_connections) argv.push_back("--tcp-established");
  for (const auto& f : r.inherit) {
    argv.push_back("--inherit-fd");
    argv.push_back("fd[" + std::to_string(kFirstPassedFd + static_cast<int>(pass.size())) +
                   "]:" + f.dumped_file);
    pass.push_back(f.fd);
  }
  argv.insert(argv.end(), r.extra_args.begin(), r.extra_args.end());
  return argv;
}

// Where a spare's criu finds the socket its options come through.
constexpr int kOptionsFd = 3;

}  // namespace

RestoreRun::RestoreRun(const std::string& criu, const RestoreRequest& r)
    : images_dir_(r.images_dir),
      work_dir_(r.work_dir.empty() ? r.images_dir : r.work_dir),
      pidfile_(work_dir_ + "/restored.pid"),
      timeout_(r.timeout) {
  unlink(pidfile_.c_str());
  if (r.watch_pid) watch_pidfile();
  auto argv = common_restore_args(criu, r.images_dir, work_dir_);
  std::vector<int> pass;
  const auto own = own_restore_args(r, pass);
  argv.insert(argv.end(), own.begin(), own.end());
  auto child = spawn_captured(argv, pass, r.owner);
  criu_pid_ = child.pid;
  output_ = std::move(child.output);
}

RestoreRun::RestoreRun(CriuSpare& spare, const RestoreRequest& r)
    : images_dir_(spare.images_dir_),
      work_dir_(spare.work_dir_),
      pidfile_(work_dir_ + "/restored.pid"),
      timeout_(r.timeout) {
  if (r.images_dir != spare.images_dir_ || r.owner != spare.owner_ || !spare.usable())
    throw Error("criu spare for " + spare.images_dir_ + " is not usable");
  std::vector<int> pass;
  const auto own = own_restore_args(r, pass);
  if (pass.size() > kSpareMaxPassedFds) throw Error("criu spare: too many descriptors to pass");
  // "TARGET TARGET ...\0OPTION\0OPTION\0..." (see the patch)
  std::string message;
  for (size_t i = 0; i < pass.size(); ++i)
    message += (i ? " " : "") + std::to_string(kFirstPassedFd + static_cast<int>(i));
  message.push_back('\0');
  for (const auto& a : own) {
    message += a;
    message.push_back('\0');
  }
  if (message.size() > kSpareMaxOptionsBytes) throw Error("criu spare: options too long");
  if (r.watch_pid) watch_pidfile();
  // Started at low priority (CriuSpares), it restores at the normal one.
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(spare.pid_), 0) != 0)
    throw_errno("criu spare: restore its priority");
  iovec iov{message.data(), message.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kSpareMaxPassedFds));
  if (!pass.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * pass.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * pass.size());
    memcpy(CMSG_DATA(cmsg), pass.data(), sizeof(int) * pass.size());
  }
  if (sendmsg(spare.socket_.get(), &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(message.size()))
    throw_errno("criu spare: send the options");
  spare.socket_.reset();
  criu_pid_ = spare.pid_;
  output_ = std::move(spare.output_);
  spare.pid_ = -1;  // ours now, and so is its work directory
  spare.work_dir_.clear();
}

CriuSpare::CriuSpare(const std::string& criu, std::string images_dir, std::string work_dir,
                     uid_t owner, const std::vector<std::string>& options)
    : images_dir_(std::move(images_dir)), work_dir_(std::move(work_dir)), owner_(owner) {
  struct stat st {};
  if (stat(images_dir_.c_str(), &st) != 0) throw_errno("criu spare: " + images_dir_);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  if (mkdir(work_dir_.c_str(), 0700) != 0) throw_errno("criu spare: mkdir " + work_dir_);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    rmdir(work_dir_.c_str());
    throw_errno("criu spare: socketpair");
  }
  socket_.reset(pair[0]);
  UniqueFd theirs(pair[1]);
  try {
    auto argv = common_restore_args(criu, images_dir_, work_dir_);
    argv.insert(argv.end(), options.begin(), options.end());
    auto child = spawn_captured(argv, {}, owner_, {theirs.get(), kOptionsFd});
    pid_ = child.pid;
    output_ = std::move(child.output);
  } catch (...) {
    socket_.reset();
    rmdir(work_dir_.c_str());
    throw;
  }
}

CriuSpare::~CriuSpare() {
  end();
}

void CriuSpare::end() {
  if (pid_ > 0) {
    // Without its options it exits by itself; the kill only makes sure.
    socket_.reset();
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  if (!work_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir_, ec);
    work_dir_.clear();
  }
}

bool CriuSpare::usable() const {
  if (pid_ <= 0) return false;
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid != 0)
    return false;
  struct stat st {};
  return stat(images_dir_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
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
    // A criu that never ends (stopped, or stuck on the restored tree) must
    // not hold the instance's start, nor thawd's shutdown, for ever.
    try {
      const auto result = collect_bounded(child, started_ + timeout_, "criu restore", timeout_);
      if (!succeeded(result))
        failure_ = "criu restore from " + images_dir_ + ": " +
                   error_lines(work_dir_ + "/restore.log", result.output);
    } catch (const Error& e) {
      failure_ = "criu restore from " + images_dir_ + ": " + e.what();
    }
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

void RestoreRun::watch_pidfile() {
  pid_watch_.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!pid_watch_) throw_errno("criu restore: inotify");
  if (inotify_add_watch(pid_watch_.get(), work_dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
    throw_errno("criu restore: watch " + work_dir_);
}

pid_t RestoreRun::wait_restored_pid(std::chrono::steady_clock::time_point deadline) {
  if (!pid_watch_) throw Error("criu restore: the pid file is not watched");
  const auto written = [this]() -> pid_t {
    std::ifstream in(pidfile_);
    pid_t pid = -1;
    in >> pid;  // criu writes the number in one write: all of it or nothing
    return pid > 0 ? pid : -1;
  };
  const int watch = pid_watch_.get();
  const UniqueFd criu_exit(criu_pid_ < 0 ? -1
                                         : static_cast<int>(syscall(SYS_pidfd_open, criu_pid_, 0)));
  for (;;) {
    if (const pid_t pid = written(); pid > 0) return pid;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !criu_exit) return -1;
    pollfd fds[2] = {{watch, POLLIN, 0}, {criu_exit.get(), POLLIN, 0}};
    if (poll(fds, 2, static_cast<int>(left.count()) + 1) < 0 && errno != EINTR)
      throw_errno("criu restore: poll");
    if (fds[1].revents) return written();  // exited: the file is there now, or never
    char events[4096];
    while (read(watch, events, sizeof events) > 0) {
    }
  }
}

pid_t restore(const std::string& criu, const RestoreRequest& r) {
  RestoreRun run(criu, r);
  return run.finish();
}

}  // namespace thaw::snapshots
