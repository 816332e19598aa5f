#pragma once
// Driving the `criu` binary: finding it, checking it, dump and restore.
// (libcriu is installed too; the binary is used until a measurement says the
// library's per-call options are worth it.)

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "thaw/unique_fd.hpp"

namespace thaw::snapshots {

// The most descriptors and option bytes one message to a spare criu may
// carry: patch 0012 refuses more (THAW_MAX_PASSED_FDS, THAW_MAX_OPTIONS_BYTES),
// and a unit test reads the patch to hold the two sides equal.
inline constexpr size_t kSpareMaxPassedFds = 16;
inline constexpr size_t kSpareMaxOptionsBytes = 65536;

struct CriuInfo {
  std::string path;     // empty when not found
  std::string version;  // "4.2.1"
  bool check_passed = false;
  std::string check_output;  // what `criu check` printed when it failed
  bool usable() const;       // found, 4.2 or newer, and `criu check` passes
};

// Asks criu at `path` its version and runs `criu check`; with no path, the
// first criu in /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin.
// A path that is not an executable file leaves `path` empty and says why in
// `check_output`.
CriuInfo probe_criu(const std::string& path = "");

// "4.2.1", from `criu --version` of the binary at `path` ("" if it says none).
std::string criu_version_of(const std::string& path);

// "4.2.1" >= "4.2"?
bool version_at_least(const std::string& version, const std::string& minimum);

// The oldest CRIU thaw runs with: older ones fail on this kernel or hang at
// dump (docs/criu.md), and the patches are made against 4.2.
inline constexpr const char* kMinCriuVersion = "4.2";

struct DumpRequest {
  pid_t pid = -1;  // root of the tree, as the host sees it
  std::string images_dir;
  std::string work_dir;  // CRIU's log goes here; default: images_dir
  // Bind mounts from outside the instance: mount point inside -> key.
  std::vector<std::pair<std::string, std::string>> external_mounts;
  bool leave_running = false;
  // TCP connections between processes of the tree (over its loopback) are saved
  // and come back established (CRIU's --tcp-established).
  bool tcp_connections = false;
  std::vector<std::string> extra_args;
  // criu is killed past it, and dump() throws.
  std::chrono::milliseconds timeout{60000};
  // The host uid that owns the tree's user namespace: criu acts as it
  // (sandbox/namespace_owner.hpp). 0: root owns it.
  uid_t owner = 0;
};

// A descriptor of ours handed to the restored tree in place of a dumped file
// ("socket:[123]", "pipe:[456]"), through CRIU's --inherit-fd.
struct InheritedFd {
  int fd;
  std::string dumped_file;
};

struct RestoreRequest {
  std::string images_dir;  // read only: many restores may share it
  std::string work_dir;    // log and pid file of this restore
  std::string root;        // the instance's root on the host (--root)
  // key -> host path for each external mount of the dump.
  std::vector<std::pair<std::string, std::string>> mount_map;
  std::vector<InheritedFd> inherit;
  // The dump saved TCP connections: they come back established, through the
  // new network namespace's loopback (thaw's CRIU brings it up: scripts/
  // criu-patches/10).
  bool tcp_connections = false;
  std::vector<std::string> extra_args;
  // Owns the restored user namespace: the dump's owner (DumpRequest::owner).
  uid_t owner = 0;
  // The caller waits for the restored root's pid (wait_restored_pid).
  bool watch_pid = false;
  // criu is killed past it (from its start), and finish() throws.
  std::chrono::milliseconds timeout{60000};
};

// Runs criu; on failure throws Error with CRIU's own "Error" lines from its log.
void dump(const std::string& criu, const DumpRequest& request);
class CriuSpare;

// A `criu restore` under way. CRIU resumes the restored tree before it is
// done (it tidies its mount yard up and writes statistics afterwards), so a
// caller that learns from the tree itself that it runs need not wait for
// criu's exit to use it: restored_pid() is valid from then on.
class RestoreRun {
 public:
  RestoreRun(const std::string& criu, const RestoreRequest& request);  // starts criu
  // Hands the request to a criu started ahead, which this run takes over
  // (the spare's work directory takes the place of request.work_dir);
  // throws Error if the spare is no longer usable.
  RestoreRun(CriuSpare& spare, const RestoreRequest& request);
  ~RestoreRun();  // reaps criu if finish() was not called
  RestoreRun(const RestoreRun&) = delete;
  RestoreRun& operator=(const RestoreRun&) = delete;

  // Waits for criu's exit; throws Error with CRIU's own "Error" lines from its
  // log if the restore failed; returns the pid of the restored tree's root.
  pid_t finish();
  // True once criu has exited (it is reaped by finish()).
  bool exited();
  // The restored root's pid from CRIU's pid file, written before the resume.
  pid_t restored_pid() const;
  // With RestoreRequest::watch_pid: waits until criu has written the pid
  // file (its tree exists, not yet resumed) and returns the pid; -1 when
  // criu exited first or `deadline` passed (finish() says why).
  pid_t wait_restored_pid(std::chrono::steady_clock::time_point deadline);
  // The pid file's watch, for the caller to close when it is not waited
  // for: closing an inotify instance waits for an SRCU grace period (about
  // 13 ms here), and inotify instances are few (128 per user, root's being
  // the whole host's), so it goes neither on the restore's path nor with
  // the instance.
  UniqueFd take_pid_watch() { return std::move(pid_watch_); }
  const std::string& work_dir() const { return work_dir_; }
  // criu's own pid while it runs (-1 once finish() reaped it).
  pid_t criu_pid() const { return criu_pid_; }

 private:
  void watch_pidfile();

  std::string images_dir_, work_dir_, pidfile_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::milliseconds timeout_;
  pid_t criu_pid_ = -1;
  UniqueFd output_;
  UniqueFd pid_watch_;  // inotify on work_dir_, with watch_pid
  std::string failure_;
};

// A criu started ahead of a restore from one images directory, waiting for
// the options that differ between restores (thaw's CRIU patch 12). Starting
// criu (exec, the dynamic linker, its set-up and the kernel-feature cache)
// took ~1.5 ms of every restore; a spare has paid it before the request.
class CriuSpare {
 public:
  // Starts criu for images_dir with work_dir (created) as its work directory,
  // acting as `owner` (RestoreRequest::owner).
  // `options` go on criu's command line: those it needs before it reads the
  // images (--tcp-close, when the dump closed connections).
  CriuSpare(const std::string& criu, std::string images_dir, std::string work_dir, uid_t owner,
            const std::vector<std::string>& options = {});
  ~CriuSpare();  // ends it and removes its work directory, unless a restore took it
  CriuSpare(const CriuSpare&) = delete;
  CriuSpare& operator=(const CriuSpare&) = delete;

  const std::string& images_dir() const { return images_dir_; }
  const std::string& work_dir() const { return work_dir_; }
  uid_t owner() const { return owner_; }
  pid_t pid() const { return pid_; }
  // Still waiting, for the directory now at images_dir (not one put there
  // since: criu opened the directory when it started).
  bool usable() const;

 private:
  friend class RestoreRun;
  void end();
  std::string images_dir_, work_dir_;
  uid_t owner_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  pid_t pid_ = -1;
  UniqueFd output_, socket_;
};

// Restores detached and waits for criu; returns the pid of the restored tree's root.
pid_t restore(const std::string& criu, const RestoreRequest& request);

}  // namespace thaw::snapshots
