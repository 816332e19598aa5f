#include "invoker/instances/function_instance.hpp"
#include "invoker/instances/instance_network.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <utility>
#include <vector>

#include "images/code_package.hpp"
#include "images/runtimes.hpp"
#include "invoker/observability/log.hpp"
#include "invoker/protocol/frame_messages.hpp"
#include "invoker/protocol/json_text.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

uint64_t epoch_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string format_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", ms);
  return buf;
}

FunctionError make_error(const std::string& type, const std::string& message) {
  return {type, message, json_text(nlohmann::json{{"errorType", type}, {"errorMessage", message}})};
}

// Lambda's bounds on what a function reports of an error; the body itself
// goes back to the caller as the bytes the function wrote.
constexpr size_t kMaxErrorTypeBytes = 256;
constexpr size_t kMaxErrorMessageBytes = 64 * 1024;

FunctionError parse_error_body(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  FunctionError e;
  e.body = body;
  // Text that reaches thawd's log, the event queue and JSON answers: UTF-8 and bounded.
  e.type = bounded_utf8(string_field(j, "errorType", "Unhandled"), kMaxErrorTypeBytes);
  e.message =
      bounded_utf8(j.is_object() ? string_field(j, "errorMessage") : body, kMaxErrorMessageBytes);
  if (e.type.empty()) e.type = "Unhandled";
  return e;
}

std::string instance_id(const std::string& function) {
  static std::atomic<uint64_t> counter{0};
  return function + "-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

}  // namespace

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t a = rng(), b = rng();
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffull));
  return buf;
}

std::string InvokeResult::log_tail() const {
  return log.size() <= kLogTailBytes ? log : log.substr(log.size() - kLogTailBytes);
}

std::string InvokeResult::server_timing() const {
  std::string out;
  const auto add = [&out](const char* name, double ms) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s;dur=%.3f", out.empty() ? "" : ", ", name, ms);
    out += buf;
  };
  const double sandbox = sandbox_ms.value_or(0);
  if (sandbox_ms) add("sandbox", sandbox);
  if (init_ms) add("init", *init_ms - sandbox);
  if (restore_ms) add("restore", *restore_ms - sandbox);
  add("handler", duration_ms);
  return out;
}

std::string runtime_fingerprint(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return "";
  std::vector<std::filesystem::path> files;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(it->path());
  if (ec) throw Error("fingerprinting runtime " + dir, ec.value());
  std::sort(files.begin(), files.end());
  std::string all;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), {});
    if (!in.good() && !in.eof()) throw Error("fingerprinting runtime: reading " + f.string());
    all += std::filesystem::relative(f, dir).string();
    all += '\0';
    all += std::to_string(content.size());
    all += '\0';
    all += content;
  }
  return images::sha256_hex(all);
}

std::string fingerprint_of(const HostEnvironment& host, const std::string& runtime) {
  const auto it = host.runtime_fingerprints.find(runtime);
  return it == host.runtime_fingerprints.end() ? "" : it->second;
}

HostEnvironment prepare_host_environment(const std::string& state_dir,
                                         const std::string& runtimes_dir,
                                         size_t namespace_pool_size,
                                         std::chrono::milliseconds namespace_idle_expiry) {
  HostEnvironment host;
  host.state_dir = std::filesystem::absolute(state_dir).string();
  host.runtimes_dir = std::filesystem::absolute(runtimes_dir).string();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(host.runtimes_dir, ec))
    if (e.is_directory())
      host.runtime_fingerprints[e.path().filename().string()] =
          runtime_fingerprint(e.path().string());
  std::filesystem::create_directories(host.state_dir + "/instances");
  // Sandboxes run as another uid: they must be able to traverse to their
  // mounts, and need not list what is there (0711).
  std::filesystem::permissions(host.state_dir, std::filesystem::perms(0711));
  std::filesystem::permissions(host.state_dir + "/instances", std::filesystem::perms(0711));
  host.root_template = sandbox::prepare_root_template(host.state_dir + "/rootfs");
  host.namespaces =
      std::make_shared<sandbox::NamespacePool>(namespace_pool_size, 8, namespace_idle_expiry);
  host.background = std::make_shared<thaw::WorkQueue>();
  // Restored instances are re-parented to the nearest subreaper when CRIU
  // exits: that must be us, so we can wait for them.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  // A runtime that dies closes its pipes: writing to them must fail, not kill us.
  signal(SIGPIPE, SIG_IGN);
  return host;
}

void FunctionInstance::append_log(std::string_view text) {
  const uint64_t room =
      max_output_bytes_ > pending_log_.size() ? max_output_bytes_ - pending_log_.size() : 0;
  const size_t kept = static_cast<size_t>(std::min<uint64_t>(room, text.size()));
  pending_log_.append(text.substr(0, kept));
  dropped_output_bytes_ += text.size() - kept;
}

std::string FunctionInstance::take_log() {
  std::string out = std::exchange(pending_log_, {});
  if (const uint64_t dropped = std::exchange(dropped_output_bytes_, 0)) {
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += "[thaw: " + std::to_string(dropped) + " bytes of output dropped over the limit of " +
           std::to_string(max_output_bytes_) + " bytes]\n";
  }
  return out;
}

FunctionError FunctionInstance::invalid_response(const std::string& request_id,
                                                 const std::string& what) {
  log_event("warn", "instance_protocol_error", {{"instance", id_}, {"reason", what}});
  sandbox_->kill();
  settle_restore(true);
  sandbox_->wait();
  const std::string prefix = request_id.empty() ? "" : "RequestId: " + request_id + " ";
  return make_error("Runtime.InvalidResponse", prefix + "Error: " + what);
}

FunctionInstance::FunctionInstance(const HostEnvironment& host, const FunctionConfig& config,
                                   const std::string& code_dir, std::string id)
    : id_(std::move(id)),
      config_(config),
      max_output_bytes_(host.max_output_bytes),
      code_dir_(code_dir),
      instance_dir_(host.state_dir + "/instances/" + id_) {
  egress_ = effective_egress(host, config);
  const auto root = config.id_mapping().to_host(0);
  tmp_ = std::make_unique<sandbox::ScratchMount>(
      instance_dir_ + "-tmp", uint64_t{config.ephemeral_storage_mb} << 20, root, root);
  mounts_ = sandbox::standard_mount_plan({code_dir,
                                          host.runtimes_dir + "/" + config.runtime,
                                          tmp_->dir(),
                                          function_etc_dir(host, config),
                                          {}});
}

void FunctionInstance::attach_link(const HostEnvironment& host, int netns_fd) {
  if (egress_.none()) return;
  if (!host.egress) throw Error("egress is off on this host: the function's policy needs it");
  link_ = with_context("linking " + id_ + " to the host",
                       [&] { return host.egress->attach(netns_fd, egress_); });
}

FunctionInstance::RuntimeEnds FunctionInstance::open_pipes() {
  auto pipes = make_channel_pipes();
  int log_fds[2];
  if (pipe2(log_fds, O_CLOEXEC) != 0) throw_errno("instance: pipe");
  log_.reset(log_fds[0]);
  channel_ = std::make_unique<FrameChannel>(std::move(pipes.thawd_in), std::move(pipes.thawd_out));
  return {std::move(pipes.runtime_in), std::move(pipes.runtime_out), UniqueFd(log_fds[1])};
}

sandbox::CgroupLimits FunctionInstance::start_limits() const {
  sandbox::CgroupLimits limits;
  limits.memory_bytes = uint64_t{config_.memory_mb} << 20;
  limits.cpus = 0;
  limits.pids_max = 1024;
  return limits;
}

std::unique_ptr<FunctionInstance> FunctionInstance::start(const HostEnvironment& host,
                                                          const FunctionConfig& config,
                                                          const std::string& code_dir,
                                                          InitOutcome& init) {
  validate(config);
  const auto started = Clock::now();
  std::unique_ptr<FunctionInstance> self(
      new FunctionInstance(host, config, code_dir, instance_id(config.name)));
  auto ends = self->open_pipes();

  std::optional<sandbox::PoolEgress> egress;
  if (!self->egress_.none() && host.egress)
    egress = sandbox::PoolEgress{host.egress, self->egress_};
  auto namespaces = host.namespaces->acquire(config.id_mapping(), egress ? &*egress : nullptr);
  if (namespaces.link)
    self->link_ = std::move(namespaces.link);  // made ahead with the pair
  else
    self->attach_link(host, namespaces.net.get());
  const auto& runtime = images::runtime_profile(config.runtime);
  auto env = lambda_environment(config);
  if (runtime.channel == images::RuntimeChannel::Pipes) env["THAW_CHANNEL_FD"] = "3";

  sandbox::SandboxSpec spec;
  spec.name = self->id_;
  spec.cgroup_parent = host.cgroup_parent;
  spec.argv = runtime.argv;
  for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);
  spec.cwd = "/var/task";
  spec.root_dir = host.root_template;
  spec.mounts = self->mounts_;
  spec.cgroup = self->start_limits();
  spec.rlimits.file_size_bytes = uint64_t{config.ephemeral_storage_mb} << 20;
  spec.seccomp = sandbox::compiled(sandbox::default_profile());
  spec.fds = {-1, ends.log.get(), ends.log.get()};
  spec.fds.push_back(ends.channel_in.get());   // becomes fd 3
  spec.fds.push_back(ends.channel_out.get());  // becomes fd 4

  try {
    self->sandbox_ = sandbox::spawn(spec, std::move(namespaces));
  } catch (const Error& e) {
    throw e.with_context("starting instance of " + config.name);
  }
  // The instance has its /tmp bound now (spawn returns after exec).
  self->tmp_->detach_host_view(host.background.get());
  const double sandbox_ms = ms_between(started, Clock::now());
  ends = {};  // the instance holds them now: its exit ends thawd's reads

  const auto deadline = started + host.init_timeout;
  auto* raw = self.get();
  const auto got = self->channel_->receive(deadline, kMaxResponseBytes, self->log_.get(),
                                           [raw](std::string_view s) { raw->append_log(s); });
  init.init_ms = ms_between(started, Clock::now());
  const auto& type = got.frame.type;
  if (type == frames::kReady) {
    self->pending_cpus_ = sandbox::cpus_for_memory(config.memory_mb);
    init.ok = true;
    self->reusable_ = true;
    self->first_init_ms_ = init.init_ms;
    self->first_sandbox_ms_ = sandbox_ms;
  } else if (type == frames::kInitError) {
    init.error = parse_error_body(got.frame.body);
  } else if (got.status == ReceiveStatus::Malformed || got.status == ReceiveStatus::TooLarge ||
             got.status == ReceiveStatus::Frame) {
    init.error = self->invalid_response("", "the runtime broke the channel's protocol during init");
  } else if (got.status == ReceiveStatus::TimedOut) {
    self->sandbox_->kill();
    init.error = make_error("Runtime.InitTimeout",
                            "Init phase did not finish within " +
                                format_ms(static_cast<double>(host.init_timeout.count()) / 1000.0) +
                                " seconds");
  } else {
    init.error = self->exit_error("");
  }
  drain_available(self->log_.get(), [raw](std::string_view s) { raw->append_log(s); });
  init.output_dropped_bytes = self->dropped_output_bytes_;
  init.log = self->take_log();
  return self;
}

sandbox::LinkCounters FunctionInstance::link_counters() {
  if (!link_) return {};
  try {
    return link_->instance_counters();
  } catch (const Error& e) {
    // The count is lost, not the invocation.
    log_event("warn", "link_counters_failed", {{"instance", id_}, {"reason", e.what()}});
    return {};
  }
}

void FunctionInstance::after_first_answer(std::function<void()> job) {
  if (answered_) {
    run_guarded(job);
    return;
  }
  after_first_answer_.push_back(std::move(job));
}

void FunctionInstance::run_guarded(const std::function<void()>& job) {
  // The answer is in: a job that fails costs what it was for, not the answer.
  try {
    job();
  } catch (const std::exception& e) {
    log_event("warn", "instance_job_failed", {{"instance", id_}, {"reason", e.what()}});
  }
}

bool FunctionInstance::apply_pending_cpus() {
  if (!pending_cpus_) return true;
  try {
    sandbox_->cgroup().set_cpus(*pending_cpus_);
  } catch (const Error& e) {
    // The invocation is on its way already: it is answered, and the instance
    // retired after it rather than kept without its share.
    log_event("warn", "cpu_share_failed", {{"instance", id_}, {"reason", e.what()}});
    return false;
  }
  pending_cpus_.reset();
  return true;
}

FunctionError FunctionInstance::exit_error(const std::string& request_id) {
  // The runtime closed its channel: wait briefly for the exit to learn why.
  settle_restore(true);
  auto status = sandbox_->wait_for(std::chrono::milliseconds(2000));
  if (!status) {
    sandbox_->kill();
    status = sandbox_->wait();
  }
  const std::string prefix = request_id.empty() ? "" : "RequestId: " + request_id + " ";
  if (status->out_of_memory)
    return make_error("Runtime.OutOfMemory",
                      prefix + "Error: Runtime exited with error: signal: killed");
  const std::string how = status->signaled ? "signal: " + std::string(strsignal(status->code))
                                           : "exit status " + std::to_string(status->code);
  return make_error("Runtime.ExitError", prefix + "Error: Runtime exited with error: " + how);
}

InvokeResult FunctionInstance::invoke(const InvokeRequest& request) {
  if (!reusable_) throw Error("instance " + id_ + " cannot serve invocations");
  InvokeResult r = begin_result(request);
  settle_restore(false);
  reusable_ = false;  // set again only when the invocation ends cleanly

  const auto sink = [this](std::string_view s) { append_log(s); };
  drain_available(log_.get(), sink);
  take_log();  // what it printed while idle belongs to no invocation
  const auto traffic_before = link_counters();
  const auto started = Clock::now();
  bool share_applied = false;
  auto got = exchange(r.request_id, request.payload, &share_applied);
  r.duration_ms = ms_between(started, Clock::now());
  const auto traffic_after = link_counters();
  r.network_out_bytes = traffic_after.tx_bytes - traffic_before.tx_bytes;
  r.network_in_bytes = traffic_after.rx_bytes - traffic_before.rx_bytes;
  answered_ = true;
  for (auto& job : std::exchange(after_first_answer_, {})) run_guarded(job);
  read_answer(std::move(got), r);
  // It answered, but without its CPU share: no more invocations for it.
  if (!share_applied) reusable_ = false;
  drain_available(log_.get(), sink);
  r.max_memory_used_mb = (sandbox_->memory_peak_bytes() + (1 << 20) - 1) >> 20;
  r.billed_ms = static_cast<uint64_t>(std::ceil(r.duration_ms));
  write_report(r);
  return r;
}

InvokeResult FunctionInstance::begin_result(const InvokeRequest& request) {
  InvokeResult r;
  r.request_id = request.request_id.empty() ? new_request_id() : request.request_id;
  r.memory_size_mb = config_.memory_mb;
  // How the instance started is told by its first invocation only.
  if (first_init_ms_ || first_restore_ms_) r.start_mode = started_as_;
  r.init_ms = std::exchange(first_init_ms_, std::nullopt);
  r.restore_ms = std::exchange(first_restore_ms_, std::nullopt);
  r.sandbox_ms = std::exchange(first_sandbox_ms_, std::nullopt);
  return r;
}

Received FunctionInstance::exchange(const std::string& request_id, const std::string& payload,
                                    bool* share_applied) {
  const auto sink = [this](std::string_view s) { append_log(s); };
  const auto deadline = Clock::now() + std::chrono::seconds(config_.timeout_s);
  const uint64_t deadline_epoch = epoch_ms() + uint64_t{config_.timeout_s} * 1000;
  const nlohmann::json header = {{"type", frames::kInvoke},
                                 {"request_id", request_id},
                                 {"deadline_ms", deadline_epoch},
                                 {"function_arn", function_arn(config_.name)}};
  Received got;
  const auto sent = channel_->send(header, payload, deadline, log_.get(), sink);
  *share_applied = apply_pending_cpus();
  if (sent == SendStatus::Sent) {
    got = channel_->receive(deadline, kMaxResponseBytes, log_.get(), sink);
  } else if (sent == SendStatus::TimedOut) {
    // It stopped reading its event: the function's Timeout, as if it ran that long.
    got.status = ReceiveStatus::TimedOut;
  }
  return got;
}

void FunctionInstance::read_answer(Received got, InvokeResult& r) {
  const auto& type = got.frame.type;
  if (type == frames::kResponse) {
    r.payload = std::move(got.frame.body);
    reusable_ = true;
  } else if (type == frames::kError) {
    r.error = parse_error_body(got.frame.body);
    r.payload = r.error->body;
    reusable_ = true;  // a handled exception leaves the runtime able to serve
  } else if (got.status == ReceiveStatus::TooLarge) {
    sandbox_->kill();
    r.error = make_error("Function.ResponseSizeTooLarge",
                         "Response payload size (" + std::to_string(got.announced_body_bytes) +
                             " bytes) exceeded maximum allowed payload size (" +
                             std::to_string(kMaxResponseBytes) + " bytes).");
  } else if (got.status == ReceiveStatus::Malformed || got.status == ReceiveStatus::Frame) {
    r.error = invalid_response(r.request_id, got.status == ReceiveStatus::Frame
                                                 ? "unexpected frame from the runtime"
                                                 : "malformed frame from the runtime");
  } else if (got.status == ReceiveStatus::TimedOut) {
    sandbox_->kill();
    settle_restore(true);
    sandbox_->wait();
    r.error = make_error("Sandbox.Timedout", "RequestId: " + r.request_id +
                                                 " Error: Task timed out after " +
                                                 format_ms(config_.timeout_s) + " seconds");
    r.duration_ms = config_.timeout_s * 1000.0;
  } else {
    r.error = exit_error(r.request_id);
  }
  if (r.error && r.payload.empty()) r.payload = r.error->body;
}

void FunctionInstance::write_report(InvokeResult& r) {
  r.report_line = "REPORT RequestId: " + r.request_id + "\tDuration: " + format_ms(r.duration_ms) +
                  " ms\tBilled Duration: " + std::to_string(r.billed_ms) +
                  " ms\tMemory Size: " + std::to_string(r.memory_size_mb) +
                  " MB\tMax Memory Used: " + std::to_string(r.max_memory_used_mb) + " MB";
  if (r.init_ms) r.report_line += "\tInit Duration: " + format_ms(*r.init_ms) + " ms";
  if (r.restore_ms) r.report_line += "\tRestore Duration: " + format_ms(*r.restore_ms) + " ms";
  r.report_line += std::string("\tStart Mode: ") + to_string(r.start_mode);
  r.output_dropped_bytes = dropped_output_bytes_;
  r.log = "START RequestId: " + r.request_id + " Version: $LATEST\n" + take_log();
  if (!r.log.empty() && r.log.back() != '\n') r.log += '\n';
  if (r.error && r.error->type == "Sandbox.Timedout") r.log += r.error->message + "\n";
  r.log += "END RequestId: " + r.request_id + "\n" + r.report_line + "\n";
}

FunctionInstance::~FunctionInstance() {
  settle_restore(true);
  sandbox_.reset();  // kills and reaps the process tree, removes the cgroup
  tmp_.reset();
}

InvokeResult invoke_cold(const HostEnvironment& host, const FunctionConfig& config,
                         const std::string& code_dir, const std::string& payload) {
  InitOutcome init;
  auto instance = FunctionInstance::start(host, config, code_dir, init);
  if (!init.ok) {
    InvokeResult r;
    r.request_id = new_request_id();
    r.start_mode = StartMode::Cold;
    r.init_ms = init.init_ms;
    r.error = init.error;
    r.payload = init.error ? init.error->body : "";
    r.memory_size_mb = config.memory_mb;
    r.log = "START RequestId: " + r.request_id + " Version: $LATEST\n" + init.log +
            "END RequestId: " + r.request_id + "\n";
    return r;
  }
  auto r = instance->invoke({"", payload});
  r.log = init.log + r.log;
  return r;
}

}  // namespace thaw::invoker
