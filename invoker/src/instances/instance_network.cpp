#include "invoker/instances/instance_network.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::invoker {

namespace {

constexpr const char* kHosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";

std::string read_small(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Instances read the file while it changes: they see the old or the new one.
// Starts of one function may write it at once: each stages its own copy.
void replace_file(const std::string& path, const std::string& text) {
  if (read_small(path) == text) return;
  std::string staged = path + ".XXXXXX";
  const UniqueFd fd(mkstemp(staged.data()));
  if (!fd) throw_errno("create " + staged);
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      fchmod(fd.get(), 0644) != 0 || rename(staged.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(staged.c_str());
    throw_errno("write " + path, err);
  }
}

}  // namespace

sandbox::EgressPolicy effective_egress(const HostEnvironment& host, const FunctionConfig& config) {
  if (config.egress) return *config.egress;
  return host.egress ? host.egress->options().default_policy : sandbox::EgressPolicy{};
}

std::string resolv_conf_text(const HostEnvironment& host, const sandbox::EgressPolicy& policy) {
  if (policy.none() || !host.egress) return "";
  std::string text;
  size_t named = 0;
  for (auto server : host.egress->options().dns) {
    if (++named > 3) break;  // what the resolver reads
    text += "nameserver " + sandbox::ipv4_text(server) + "\n";
  }
  return text.empty() ? text : text + "options timeout:2 attempts:2\n";
}

std::string function_etc_dir(const HostEnvironment& host, const FunctionConfig& config) {
  // Every start asks; the files change only with the policy. What was
  // written last is remembered, and the files are looked at only when the
  // text differs or they are gone (the function was deleted meanwhile).
  static std::mutex mutex;
  static std::map<std::string, std::string> written;  // dir -> resolv.conf text
  const auto resolv = resolv_conf_text(host, effective_egress(host, config));
  auto dir = host.state_dir + "/etc/" + config.name;
  {
    const std::lock_guard lock(mutex);
    const auto it = written.find(dir);
    if (it != written.end() && it->second == resolv && access((dir + "/hosts").c_str(), F_OK) == 0)
      return dir;
  }
  with_context("the /etc files of " + config.name, [&] {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error("create " + dir + ": " + ec.message());
    // Instances run as other uids: they read, nobody else writes.
    chmod((host.state_dir + "/etc").c_str(), 0711);
    chmod(dir.c_str(), 0755);
    replace_file(dir + "/resolv.conf", resolv);
    replace_file(dir + "/hosts", kHosts);
  });
  const std::lock_guard lock(mutex);
  written[dir] = resolv;
  return dir;
}

}  // namespace thaw::invoker
