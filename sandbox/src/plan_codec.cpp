#include "plan_codec.hpp"

#include <cstdint>
#include <cstring>

namespace thaw::sandbox::detail {

namespace {

// Generous bounds for counts, so a damaged plan cannot ask for huge vectors.
constexpr int64_t kMaxItems = 1 << 16;

void put(std::string& out, int64_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put(std::string& out, const char* s) {
  if (!s) return put(out, int64_t{-1});
  const auto n = strlen(s);
  put(out, static_cast<int64_t>(n));
  out.append(s, n);
}

void put_strings(std::string& out, char* const* list) {
  int64_t n = 0;
  while (list && list[n]) ++n;
  put(out, n);
  for (int64_t i = 0; i < n; ++i) put(out, list[i]);
}

class Reader {
 public:
  Reader(std::string_view in, DecodedPlan& out) : in_(in), out_(out) {}

  int64_t number() {
    int64_t v = 0;
    if (in_.size() < sizeof v) return fail();
    memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return v;
  }
  int64_t count() {
    const auto n = number();
    return n < 0 || n > kMaxItems ? fail() : n;
  }
  const char* text() {
    const auto n = number();
    if (n < 0) return nullptr;
    if (static_cast<uint64_t>(n) > in_.size()) return fail(), nullptr;
    out_.strings.emplace_back(in_.substr(0, n));
    in_.remove_prefix(n);
    return out_.strings.back().c_str();
  }
  void strings(std::vector<char*>& list) {
    const auto n = count();
    for (int64_t i = 0; ok_ && i < n; ++i) list.push_back(const_cast<char*>(text()));
    list.push_back(nullptr);
  }
  void bytes(void* to, size_t n) {
    if (n == 0) return;  // `to` may be null then
    if (in_.size() < n) return (void)fail();
    memcpy(to, in_.data(), n);
    in_.remove_prefix(n);
  }
  bool done() const { return ok_ && in_.empty(); }

 private:
  int64_t fail() {
    ok_ = false;
    in_ = {};
    return 0;
  }
  std::string_view in_;
  DecodedPlan& out_;
  bool ok_ = true;
};

}  // namespace

std::string encode_plan(const ChildPlan& p) {
  std::string out;
  for (int64_t v : {p.report_fd, p.user_ns_fd, p.net_ns_fd}) put(out, v);
  put(out, p.root_dir);
  put(out, static_cast<int64_t>(p.mounts.size()));
  for (const auto& m : p.mounts) {
    put(out, static_cast<int64_t>(m.kind));
    put(out, m.source);
    put(out, m.target);
  }
  put(out, p.hostname);
  put(out, p.cwd);
  for (int64_t v : {int64_t{p.uid}, int64_t{p.gid}, int64_t{p.cap_last}}) put(out, v);
  put(out, static_cast<int64_t>(p.rlimits.size()));
  for (const auto& r : p.rlimits) {
    put(out, r.resource);
    put(out, static_cast<int64_t>(r.value));
  }
  put(out, static_cast<int64_t>(p.seccomp.len));
  out.append(reinterpret_cast<const char*>(p.seccomp.filter), p.seccomp.len * sizeof(sock_filter));
  put(out, static_cast<int64_t>(p.fds.size()));
  for (int fd : p.fds) put(out, fd);
  put(out, p.fd_scratch_base);
  put_strings(out, p.argv);
  put_strings(out, p.envp);
  return out;
}

bool decode_plan(std::string_view bytes, DecodedPlan& out) {
  Reader r(bytes, out);
  auto& p = out.plan;
  p.report_fd = static_cast<int>(r.number());
  p.user_ns_fd = static_cast<int>(r.number());
  p.net_ns_fd = static_cast<int>(r.number());
  p.root_dir = r.text();
  for (auto n = r.count(); n > 0; --n) {
    ChildMount m{};
    m.kind = static_cast<MountKind>(r.number());
    m.source = r.text();
    m.target = r.text();
    p.mounts.push_back(m);
  }
  p.hostname = r.text();
  p.cwd = r.text();
  p.uid = static_cast<uid_t>(r.number());
  p.gid = static_cast<gid_t>(r.number());
  p.cap_last = static_cast<int>(r.number());
  for (auto n = r.count(); n > 0; --n) {
    ChildRlimit l{};
    l.resource = static_cast<int>(r.number());
    l.value = static_cast<rlim_t>(r.number());
    p.rlimits.push_back(l);
  }
  out.filter.resize(static_cast<size_t>(r.count()));
  r.bytes(out.filter.data(), out.filter.size() * sizeof(sock_filter));
  p.seccomp.len = static_cast<unsigned short>(out.filter.size());
  p.seccomp.filter = out.filter.empty() ? nullptr : out.filter.data();
  for (auto n = r.count(); n > 0; --n) p.fds.push_back(static_cast<int>(r.number()));
  p.fd_scratch_base = static_cast<int>(r.number());
  r.strings(out.argv);
  r.strings(out.envp);
  p.argv = out.argv.data();
  p.envp = out.envp.data();
  return r.done() && p.root_dir && p.hostname && p.cwd && out.argv.size() > 1;
}

}  // namespace thaw::sandbox::detail
