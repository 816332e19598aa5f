#include "thawd_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sandbox/cgroup.hpp"
#include "thaw/error.hpp"

extern char** environ;

namespace thaw::itest {

namespace {

pid_t spawn_program(const std::vector<std::string>& argv, int out_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw_errno("spawn " + argv[0], rc);
  return pid;
}

// thawd dies with the test process, also when a test aborts (a sanitizer
// report, say) before any destructor runs.
pid_t spawn_thawd(const std::vector<std::string>& argv, int out_fd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw_errno("fork for thawd");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    const int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    execve(args[0], args.data(), environ);
    _exit(127);
  }
  return pid;
}

}  // namespace

ThawdProcess::ThawdProcess(std::vector<std::string> extra_args,
                           const std::string& reuse_state_dir) {
  std::string dir;
  if (reuse_state_dir.empty()) {
    char tmpl[] = "/tmp/thawd-it-XXXXXX";
    if (!mkdtemp(tmpl)) throw_errno("mkdtemp");
    dir = tmpl;
  } else {
    dir = std::filesystem::path(reuse_state_dir).parent_path();
    owns_state_ = false;
  }
  state_dir_ = dir + "/state";
  log_path_ = dir + (owns_state_ ? "/thawd.log" : "/thawd-restarted.log");
  cgroup_parent_ = "thaw-it-" + std::filesystem::path(dir).filename().string().substr(9);
  std::vector<std::string> argv = {THAWD_PATH, "--listen",        "127.0.0.1:0", "--state-dir",
                                   state_dir_, "--cgroup-parent", cgroup_parent_};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_ = spawn_thawd(argv, log_fd);
  close(log_fd);
  // thawd logs {"event":"listening","port":N} once its socket is bound; the
  // log file is followed until then (or until thawd exits).
  for (int i = 0; i < 2000 && port_ == 0; ++i) {
    std::istringstream lines(log());
    for (std::string line; std::getline(lines, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("event", "") == "listening") port_ = j.value("port", 0);
    }
    int status;
    if (port_ == 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw Error("thawd exited at start: " + log());
    }
    if (port_ == 0) usleep(5000);
  }
  if (port_ == 0) throw Error("thawd did not report its port: " + log());
}

ThawdProcess::~ThawdProcess() {
  if (pid_ > 0) {
    // A graceful stop takes its instances and cgroups down with it; SIGKILL
    // only if it does not stop within 20 s.
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 2000 && waitpid(pid_, &status, WNOHANG) == 0; ++i) usleep(10000);
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  if (!owns_state_) return;
  // Whatever a killed thawd left running (its instances, their cgroups) goes too.
  try {
    sandbox::reap_orphan_cgroups(cgroup_parent_);
    sandbox::remove_cgroup_parent(cgroup_parent_);
  } catch (const std::exception&) {
  }
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(state_dir_).parent_path(), ec);
}

void ThawdProcess::kill_hard() {
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int ThawdProcess::stop() {
  kill(pid_, SIGTERM);
  return wait();
}

int ThawdProcess::wait() {
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string ThawdProcess::token() const {
  std::ifstream in(state_dir_ + "/admin-token");
  std::string t;
  in >> t;
  return t;
}

std::string ThawdProcess::log() const {
  std::ifstream in(log_path_);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::pair<int, std::string> run_program(const std::vector<std::string>& argv) {
  char path[] = "/tmp/thaw-run-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw_errno("mkstemp");
  const pid_t pid = spawn_program(argv, fd);
  close(fd);
  int status;
  waitpid(pid, &status, 0);
  std::ifstream in(path);
  std::string out((std::istreambuf_iterator<char>(in)), {});
  unlink(path);
  return {status, out};
}

}  // namespace thaw::itest
