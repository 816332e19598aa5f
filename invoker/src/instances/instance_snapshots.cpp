#include "invoker/instances/instance_snapshots.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "images/code_package.hpp"
#include "images/runtimes.hpp"
#include "invoker/instances/instance_network.hpp"
#include "invoker/observability/log.hpp"
#include "invoker/protocol/frame_messages.hpp"
#include "invoker/protocol/json_text.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/rootfs.hpp"
#include "sandbox/tree_copy.hpp"
#include "snapshots/criu.hpp"
#include "snapshots/criu_environment.hpp"
#include "thaw/build_info.hpp"
#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace fs = std::filesystem;

namespace thaw::invoker {

namespace {

using Clock = std::chrono::steady_clock;

// "var/task" -> "var_task": a CRIU external-mount key.
std::string mount_key(const std::string& target) {
  std::string key = target;
  for (auto& c : key)
    if (c == '/') c = '_';
  return key;
}

std::vector<std::pair<std::string, std::string>> external_binds(const sandbox::MountPlan& plan) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& op : plan)
    if (op.kind == sandbox::MountKind::Bind || op.kind == sandbox::MountKind::ReadOnlyBind)
      out.push_back({"/" + op.target, mount_key(op.target)});
  return out;
}

// How much warm memory to free before restoring a snapshot: twice its pages
// (a freed block is not always the next one the kernel hands out) and room
// for CRIU's own.
size_t warm_memory_for(const std::string& snapshot_dir, const snapshots::SnapshotManifest& m) {
  size_t pages = 0;
  for (const auto& [file, sum] : m.files) {
    if (file.rfind("images/pages-", 0) != 0) continue;
    std::error_code ec;
    const auto size = fs::file_size(snapshot_dir + "/" + file, ec);
    if (!ec) pages += size;
  }
  return 2 * pages + (size_t{16} << 20);
}

// The v1 hierarchies of `pid` that hold a controller thaw manages, as CRIU
// names them ("memory", "cpu,cpuacct"); empty when one of them is on cgroup2
// (then CRIU dumps every hierarchy).
std::vector<std::string> managed_hierarchies(pid_t pid, const std::vector<std::string>& managed) {
  const auto memberships = sandbox::cgroup_memberships("/proc/" + std::to_string(pid) + "/cgroup");
  std::vector<std::string> out;
  for (const auto& c : managed) {
    const auto m = std::find_if(memberships.begin(), memberships.end(),
                                [&](const auto& h) { return h.holds(c); });
    if (m == memberships.end()) return {};
    if (std::find(out.begin(), out.end(), m->controllers) == out.end())
      out.push_back(m->controllers);
  }
  return out;
}

std::string fd_target(pid_t pid, int fd) {
  const auto link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  std::error_code ec;
  const auto target = fs::read_symlink(link, ec);
  if (ec) throw Error("snapshot: readlink " + link + ": " + ec.message());
  return target.string();
}

// The file status flags of a descriptor of `pid`, from /proc/PID/fdinfo.
int fd_flags(pid_t pid, int fd) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  for (std::string key; in >> key;) {
    if (key == "flags:") {
      std::string octal;
      in >> octal;
      return static_cast<int>(std::stol(octal, nullptr, 8));
    }
  }
  throw Error("snapshot: no flags for fd " + std::to_string(fd) + " of pid " + std::to_string(pid));
}

// The instance's process that holds the runtime's end of the channel (fds 3
// and 4): the first one, except for provided runtimes, where the Runtime API
// server beside the bootstrap does. Found by the pipe thawd reads from.
pid_t channel_holder(const sandbox::Instance& instance, int thawd_in_fd) {
  const auto pipe = fd_target(getpid(), thawd_in_fd);
  std::ifstream procs(instance.cgroup().directories().at(0) + "/cgroup.procs");
  for (pid_t p; procs >> p;) {
    std::error_code ec;
    const auto link = "/proc/" + std::to_string(p) + "/fd/" + std::to_string(kRuntimeChannelOut);
    if (fs::read_symlink(link, ec).string() == pipe) return p;
  }
  throw Error("snapshot: no process of the instance holds its channel");
}

bool holds_tcp_connections(const FunctionConfig& config) {
  return images::runtime_profile(config.runtime).holds_tcp_connections();
}

// An instance with egress may hold connections to the outside when it is
// dumped. Restored copies must not share them (each would speak for the
// same connection): they come back closed, and the function reconnects
// (docs/egress.md). A runtime whose own Runtime API connection must come back
// established keeps CRIU's --tcp-established instead.
bool closes_tcp_connections(const FunctionConfig& config, const sandbox::EgressPolicy& egress) {
  return !egress.none() && !holds_tcp_connections(config);
}

// /tmp is a mount of thawd's, so CRIU does not save it: copy what init wrote
// there, owners and modes included, within what that /tmp can hold. The
// instance runs while its /tmp is copied: sandbox/tree_copy.hpp says how the
// copy keeps to it.
void copy_tree(const std::string& from, const std::string& to, const FunctionConfig& config) {
  const uint64_t size = uint64_t{config.ephemeral_storage_mb} << 20;
  sandbox::TreeCopyLimits limits;
  limits.max_entries = sandbox::scratch_inodes(size);
  limits.max_bytes = size;
  limits.deadline = std::chrono::seconds(10);
  const auto copied = sandbox::copy_tree_beneath(from, to, limits);
  if (copied.skipped)
    log_event("info", "tmp_copy_skipped",
              {{"from", from}, {"skipped", copied.skipped}, {"copied", copied.entries}});
}

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}

}  // namespace

std::vector<std::string> spare_options(const HostEnvironment& host, const FunctionConfig& config) {
  if (closes_tcp_connections(config, effective_egress(host, config))) return {"--tcp-close"};
  return {};
}

std::string function_digest(const FunctionConfig& c, const std::string& code_sha256,
                            const std::string& runtime_fingerprint, const std::string& egress) {
  nlohmann::json j = {{"code", code_sha256},
                      {"runtime", c.runtime},
                      {"runtime_files", runtime_fingerprint},
                      {"handler", c.handler},
                      {"memory", c.memory_mb},
                      {"timeout", c.timeout_s},
                      {"storage", c.ephemeral_storage_mb},
                      {"env", c.environment},
                      {"thaw", kVersion},
                      // Init may have used the network it had; the images
                      // bind /etc/thaw since egress came.
                      {"egress", egress},
                      // The images hold the id map and their owner's files.
                      {"ids", c.host_id_base}};
  return images::sha256_hex(json_text(j));
}

void FunctionInstance::checkpoint(std::unique_ptr<FunctionInstance> inst,
                                  const snapshots::CriuInfo& criu, snapshots::SnapshotClaim& claim,
                                  snapshots::SnapshotStore& store) {
  if (!inst->reusable()) throw Error("snapshot: the instance is not in a state to checkpoint");
  auto* raw = inst.get();
  const auto sink = [raw](std::string_view s) { raw->append_log(s); };
  // Before-snapshot hooks run in the runtime; it answers once it is quiet.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  if (inst->channel_->send({{"type", frames::kPrepareSnapshot}}, {}, deadline, inst->log_.get(),
                           sink) != SendStatus::Sent)
    throw Error("snapshot: the runtime did not take the request to get ready");
  const auto got = inst->channel_->receive(deadline, kMaxResponseBytes, inst->log_.get(), sink);
  if (got.status != ReceiveStatus::Frame || got.frame.type != frames::kSnapshotReady)
    throw Error("snapshot: the runtime did not get ready for a snapshot");

  const pid_t pid = inst->sandbox_->pid();
  const pid_t holder = channel_holder(*inst->sandbox_, inst->channel_->in_fd());
  snapshots::SnapshotManifest m;
  for (int fd : {1, 2, kRuntimeChannelIn, kRuntimeChannelOut}) {
    const pid_t owner = fd > 2 ? holder : pid;
    m.inherited[fd] = fd_target(owner, fd);
    m.inherited_flags[fd] = fd_flags(owner, fd);
  }
  m.external_mounts = external_binds(inst->mounts_);
  m.criu_version = criu.version;
  m.kernel_release = kernel_release();
  // thawd's own view of the instance's /tmp may be unmounted by now
  // (ScratchMount::detach_host_view); the instance's is reachable through its root.
  copy_tree("/proc/" + std::to_string(pid) + "/root/tmp", claim.work_dir() + "/tmp-files",
            inst->config_);

  snapshots::DumpRequest dump;
  dump.pid = pid;
  dump.images_dir = claim.work_dir() + "/images";
  fs::create_directories(dump.images_dir);
  // The function's owner alone (and root) may enter: criu writes there as
  // that owner, and the restored tasks read some images from there as it.
  const auto owner = inst->config_.id_mapping().owner();
  if (chown(dump.images_dir.c_str(), owner, owner) != 0 ||
      chmod(dump.images_dir.c_str(), 0700) != 0)
    throw_errno("snapshot: give " + dump.images_dir + " to its owner");
  dump.work_dir = inst->instance_dir_ + "-dump";
  fs::create_directories(dump.work_dir);
  dump.external_mounts = m.external_mounts;
  // The network namespace holds nothing but loopback: restore makes a new one,
  // and there is no traffic to hold still, so no iptables lock around it.
  dump.extra_args = {"--empty-ns", "net", "--network-lock", "skip"};
  // Only the hierarchies thaw manages go into the image. A restore moved the
  // instance into every dumped one, each move a round trip through CRIU's
  // user-namespace helper (six more per restore here, ~0.6 ms), and in the
  // others a cold-started instance stays where thawd is, as it now does.
  for (const auto& h : managed_hierarchies(pid, inst->sandbox_->cgroup().controllers())) {
    dump.extra_args.push_back("--cgroup-dump-controller");
    dump.extra_args.push_back(h);
  }
  dump.tcp_connections = holds_tcp_connections(inst->config_);
  if (closes_tcp_connections(inst->config_, inst->egress_))
    dump.extra_args.push_back("--tcp-close");
  dump.owner = inst->config_.id_mapping().owner();
  try {
    snapshots::dump(criu.path, dump);
  } catch (...) {
    fs::remove_all(dump.work_dir);
    throw;
  }
  fs::remove_all(dump.work_dir);
  inst->sandbox_->wait();  // the dump ended the original
  store.publish(claim, m);
}

namespace {

// What criu is asked to do: restore the images into the instance's root,
// mounts and cgroup, with the instance's fresh pipes in place of the dumped
// ones (fds 1 and 2 share one pipe).
snapshots::RestoreRequest restore_request(const HostEnvironment& host, const FunctionConfig& config,
                                          const std::string& id, const sandbox::MountPlan& mounts,
                                          const std::string& snapshot_dir,
                                          const snapshots::SnapshotManifest& manifest,
                                          const std::map<int, int>& fresh,
                                          const sandbox::InstanceCgroup& group,
                                          const sandbox::EgressPolicy& egress) {
  snapshots::RestoreRequest req;
  req.images_dir = snapshot_dir + "/images";
  const auto scratch = snapshots::criu_scratch_dir();
  req.work_dir =
      (scratch.empty() ? host.state_dir + "/instances" : scratch) + "/" + id + "-restore";
  req.root = host.root_template;
  for (const auto& op : mounts)
    if (op.kind == sandbox::MountKind::Bind || op.kind == sandbox::MountKind::ReadOnlyBind)
      req.mount_map.push_back({mount_key(op.target), op.source});
  std::set<std::string> handed;
  for (const auto& [fd, file] : manifest.inherited) {
    if (!fresh.count(fd))
      throw Error("restore: the snapshot names an unknown descriptor " + std::to_string(fd));
    if (handed.insert(file).second) {
      req.inherit.push_back({fresh.at(fd), file});
      // CRIU reopens an inherited pipe through /proc/self/fd in the restored
      // task; a pipe of thawd's (the host's root) it may not open there, and
      // CRIU then asks its user-namespace helper, ~0.1 ms per pipe. Owned by
      // the instance's root, the task opens it itself. (It holds the pipe
      // anyway: nothing more is given away.)
      if (fchown(fresh.at(fd), config.id_mapping().to_host(0), config.id_mapping().to_host(0)) != 0)
        throw_errno("restore: give the instance its pipe");
    }
    if (auto it = manifest.inherited_flags.find(fd); it != manifest.inherited_flags.end()) {
      const int keep = O_NONBLOCK | O_APPEND;
      const int now = fcntl(fresh.at(fd), F_GETFL);
      fcntl(fresh.at(fd), F_SETFL, (now & ~keep) | (it->second & keep));
    }
  }
  req.extra_args = {"--empty-ns", "net", "--network-lock", "skip"};
  req.owner = config.id_mapping().owner();
  req.tcp_connections = holds_tcp_connections(config);
  if (closes_tcp_connections(config, egress)) req.extra_args.push_back("--tcp-close");
  // Its link is attached between CRIU making the namespace and resuming.
  req.watch_pid = !egress.none();
  for (const auto& c : group.controllers()) {
    req.extra_args.push_back("--cgroup-root");
    req.extra_args.push_back(c + ":/" + group.path());
  }
  return req;
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

std::unique_ptr<FunctionInstance> FunctionInstance::restore(
    const HostEnvironment& host, const FunctionConfig& config, const std::string& code_dir,
    const std::string& criu, const std::string& snapshot_dir,
    const snapshots::SnapshotManifest& manifest, snapshots::CriuSpares* spares,
    bool* through_spare) {
  const auto started = Clock::now();
  // First, while CRIU has not yet started: its memory comes a dozen ms later.
  if (host.warm_memory) host.warm_memory->release_soon(warm_memory_for(snapshot_dir, manifest));
  std::unique_ptr<FunctionInstance> self(new FunctionInstance(
      host, config, code_dir, config.name + "-r" + new_request_id().substr(0, 8)));
  if (fs::exists(snapshot_dir + "/tmp-files"))
    copy_tree(snapshot_dir + "/tmp-files", self->tmp_->dir(), config);
  auto ends = self->open_pipes();
  auto group = std::make_unique<sandbox::InstanceCgroup>(host.cgroup_parent + "/" + self->id_,
                                                         self->start_limits());
  const std::map<int, int> fresh = {{1, ends.log.get()},
                                    {2, ends.log.get()},
                                    {kRuntimeChannelIn, ends.channel_in.get()},
                                    {kRuntimeChannelOut, ends.channel_out.get()}};
  const auto req = restore_request(host, config, self->id_, self->mounts_, snapshot_dir, manifest,
                                   fresh, *group, self->egress_);
  // "restored" waits in the channel: the runtime reads it the moment CRIU
  // resumes it and runs its after-restore hooks (reseed, refresh, user hooks)
  // while CRIU is still tidying up; "ready" says the instance can serve.
  // With egress it is sent once the link is in: a hook may reconnect.
  const bool linked = req.watch_pid;
  if (!linked) self->send_restored(host);
  const auto criu_started = Clock::now();
  self->restore_phases_.prepare_ms = ms_between(started, criu_started);
  self->start_criu(criu, req, spares, through_spare);
  // criu goes into the instance's group of the pids hierarchy (its memory
  // and CPU stay thawd's), and so does all it forks: a criu killed half-way
  // leaves its half-restored tasks there, where the failure below ends
  // them, instead of beside thawd. (criu forks its first helper
  // milliseconds after it starts; this takes microseconds.)
  try {
    group->track(self->restore_run_->criu_pid());
  } catch (const Error& e) {
    log_event("warn", "restore_criu_not_in_group", {{"instance", self->id_}, {"reason", e.what()}});
  }
  // Only criu and the restored tree hold the runtime's ends now: if the
  // restore fails, they all close and the wait below ends at once.
  ends = {};
  if (linked) {
    try {
      // Without a pid, criu failed or ran out of time: finish() below says why.
      const auto waiting = Clock::now();
      if (const pid_t root =
              self->restore_run_->wait_restored_pid(Clock::now() + host.init_timeout);
          root > 0) {
        const auto linking = Clock::now();
        const UniqueFd netns(
            open(("/proc/" + std::to_string(root) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
        if (!netns) throw_errno("restore: open the restored network namespace");
        self->attach_link(host, netns.get());
        self->send_restored(host);
        // Closed off the restore's path (see take_pid_watch).
        auto watch = std::make_shared<UniqueFd>(self->restore_run_->take_pid_watch());
        if (host.background) host.background->post([watch] { watch->reset(); });
        log_event("debug", "restore_link",
                  {{"instance", self->id_},
                   {"pid_wait_ms", ms_between(waiting, linking)},
                   {"link_ms", ms_between(linking, Clock::now())}});
      }
    } catch (const Error& e) {
      self->settle_restore(true);
      sandbox::end_group_processes(host.cgroup_parent, self->id_, std::chrono::seconds(2));
      throw e.with_context("restoring " + config.name);
    }
  }

  auto* raw = self.get();
  const auto sink = [raw](std::string_view s) { raw->append_log(s); };
  const auto deadline = Clock::now() + host.init_timeout;
  // criu's helpers and the half-restored tree of a criu that failed or was
  // killed may still hold the runtime's ends: criu's exit ends the wait too.
  // It exits once it has resumed the tree, usually before "ready" comes.
  const UniqueFd criu_exit(
      static_cast<int>(syscall(SYS_pidfd_open, self->restore_run_->criu_pid(), 0)));
  auto got =
      self->channel_->receive(deadline, kMaxResponseBytes, self->log_.get(), sink, criu_exit.get());
  pid_t pid;
  bool ready = false;
  Clock::time_point ready_at;
  try {
    if (got.status == ReceiveStatus::Stopped) {
      self->restore_run_->finish();  // throws when the restore failed
      got = self->channel_->receive(deadline, kMaxResponseBytes, self->log_.get(), sink);
    }
    ready_at = Clock::now();
    ready = got.status == ReceiveStatus::Frame && got.frame.type == frames::kReady;
    // A ready runtime runs: CRIU wrote the pid file before resuming it.
    pid = ready ? self->restore_run_->restored_pid() : self->restore_run_->finish();
  } catch (const Error& e) {
    self->settle_restore(true);
    sandbox::end_group_processes(host.cgroup_parent, self->id_, std::chrono::seconds(2));
    throw e.with_context("restoring " + config.name);
  }
  self->sandbox_ = sandbox::adopt(self->id_, pid, std::move(group));
  // CRIU has bound it at the instance's /tmp; CRIU's tidying up holds the
  // mount lock the unmount needs for milliseconds yet.
  self->after_first_answer(
      [tmp = self->tmp_.get(), queue = host.background] { tmp->detach_host_view(queue.get()); });
  if (!ready) throw Error(self->not_ready_reason(pid));
  // CRIU's share ends where the runtime's hooks begin, as the runtime measures them.
  const auto& reported = got.frame.header;
  const double hooks_ms = reported.contains("hooks_ms") && reported["hooks_ms"].is_number()
                              ? double(reported["hooks_ms"])
                              : 0.0;
  const double until_ready = ms_between(criu_started, ready_at);
  // The figure is the instance's word: a negative one must not make CRIU's
  // share longer than the whole.
  self->restore_phases_.resume_ms = std::clamp(hooks_ms, 0.0, until_ready);
  self->restore_phases_.criu_ms = until_ready - self->restore_phases_.resume_ms;
  self->pending_cpus_ = sandbox::cpus_for_memory(config.memory_mb);
  self->reusable_ = true;
  self->started_as_ = StartMode::Restore;
  self->first_restore_ms_ = ms_between(started, Clock::now());
  self->first_sandbox_ms_ = self->restore_phases_.prepare_ms;
  self->settle_restore(false);
  return self;
}

void FunctionInstance::send_restored(const HostEnvironment& host) {
  // The pipe is new and empty: the frame fits at once.
  if (channel_->send({{"type", frames::kRestored}}, {}, Clock::now() + host.init_timeout) !=
      SendStatus::Sent)
    throw Error("restore: cannot write to the new channel");
}

void FunctionInstance::start_criu(const std::string& criu, const snapshots::RestoreRequest& req,
                                  snapshots::CriuSpares* spares, bool* through_spare) {
  if (auto spare = spares ? spares->take(req.images_dir) : nullptr) {
    try {
      restore_run_ = std::make_unique<snapshots::RestoreRun>(*spare, req);
      restore_phases_.criu_spare = true;
      if (through_spare) *through_spare = true;
      return;
    } catch (const Error&) {
      // Gone since it was taken: criu is started here instead, as without one.
    }
  }
  try {
    fs::create_directories(req.work_dir);
    restore_run_ = std::make_unique<snapshots::RestoreRun>(criu, req);
  } catch (const Error& e) {
    fs::remove_all(req.work_dir);
    throw e.with_context("restoring " + config_.name);
  }
}

// Why a restored runtime did not become ready, with the descriptors it got.
std::string FunctionInstance::not_ready_reason(pid_t pid) {
  std::string fds;
  for (int fd : {1, 3, 4}) {
    std::error_code ec;
    const auto t =
        fs::read_symlink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd), ec);
    fds += " fd" + std::to_string(fd) + "=" + (ec ? "?" : t.string());
  }
  std::error_code ec;
  const auto ours_in = fs::read_symlink("/proc/self/fd/" + std::to_string(channel_->in_fd()), ec);
  fds += " (thawd reads " + (ec ? "?" : ours_in.string()) + ")";
  const auto why = exit_error("");
  return "restore: the restored runtime did not become ready (" + why.message + ";" + fds +
         "): " + valid_utf8(pending_log_.substr(0, 500));
}

void FunctionInstance::settle_restore(bool wait) {
  if (!restore_run_ || (!wait && !restore_run_->exited())) return;
  try {
    restore_run_->finish();
  } catch (const Error&) {
    // The tree was resumed and answered: whatever failed while CRIU tidied
    // up afterwards (its log says) does not concern the instance.
  }
  // THAW_KEEP_CRIU_LOGS=DIR keeps CRIU's log of every restore there, for debugging.
  if (const char* keep = getenv("THAW_KEEP_CRIU_LOGS")) {
    std::error_code ec;
    fs::copy_file(restore_run_->work_dir() + "/restore.log",
                  std::string(keep) + "/" + id_ + ".restore.log", ec);
  }
  std::error_code ec;
  fs::remove_all(restore_run_->work_dir(), ec);
  restore_run_.reset();
}

}  // namespace thaw::invoker
