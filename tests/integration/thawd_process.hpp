#pragma once
// Starts the real thawd binary on a free loopback port for end-to-end tests,
// and talks to it over real HTTP. The process is stopped (and reaped) on destruction.

#include <sys/types.h>

#include <boost/beast/http.hpp>
#include <string>
#include <vector>

namespace thaw::itest {

namespace http = boost::beast::http;

class ThawdProcess {
 public:
  // `reuse_state_dir` non-empty: start on another ThawdProcess's state directory
  // (a restart); that one keeps owning the directory. Each state directory gets
  // its own cgroup parent, so tests running side by side never see each
  // other's instances.
  explicit ThawdProcess(std::vector<std::string> extra_args = {},
                        const std::string& reuse_state_dir = "");
  ~ThawdProcess();
  ThawdProcess(const ThawdProcess&) = delete;
  ThawdProcess& operator=(const ThawdProcess&) = delete;

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& state_dir() const { return state_dir_; }
  // The admin token thawd created in its state directory.
  std::string token() const;
  // Sends SIGTERM and waits; returns the exit status as waitpid gives it.
  int stop();
  // Waits for thawd to exit by itself (after a signal the test sent); the status.
  int wait();
  // SIGKILL, as a crash: no clean-up of any kind.
  void kill_hard();
  const std::string& cgroup_parent() const { return cgroup_parent_; }
  // What thawd wrote to stderr so far.
  std::string log() const;

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string state_dir_;
  std::string log_path_;
  std::string cgroup_parent_;
  bool owns_state_ = true;
};

// Runs a program to completion; returns (exit status, stdout+stderr).
std::pair<int, std::string> run_program(const std::vector<std::string>& argv);

}  // namespace thaw::itest
