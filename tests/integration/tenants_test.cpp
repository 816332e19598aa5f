// Tenants apart on the host, against the real thawd: each function runs
// under host ids of its own, in namespaces its own host uid owns, cold and
// restored, so that per-user kernel quotas one function exhausts are not
// root's or another function's. The pool of ids is the operator's, with a
// clear error when it runs out.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/nsfs.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "host_processes.hpp"
#include "lambda_client.hpp"
#include "python_function.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A pool no other test's thawd uses, so its ids are known here.
constexpr uint32_t kPoolFirst = 2000000000;
constexpr uint32_t kRange = 65536;
const std::vector<std::string> kPool = {"--id-pool-first", std::to_string(kPoolFirst),
                                        "--id-pool-ranges", "4"};

// What an instance sees of its ids: its id maps, which name the host range.
const char* kIds = R"(
import os
def handler(event, context):
    return {"uid_map": open("/proc/self/uid_map").read().split(),
            "gid_map": open("/proc/self/gid_map").read().split()}
)";

std::string first_host_id(const json& ids, const char* map) {
  return ids.at(map).at(1).get<std::string>();  // "0 HOST 65536"
}

// The host uid that owns pid's user namespace.
uid_t namespace_owner(pid_t pid) {
  const int fd = open(("/proc/" + std::to_string(pid) + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return static_cast<uid_t>(-1);
  uid_t owner = static_cast<uid_t>(-1);
  if (ioctl(fd, NS_GET_OWNER_UID, &owner) != 0) owner = static_cast<uid_t>(-1);
  close(fd);
  return owner;
}

std::set<uid_t> owners_of_instances(const ThawdProcess& thawd) {
  std::set<uid_t> owners;
  for (pid_t p : processes_in_cgroups_under(thawd.cgroup_parent()))
    owners.insert(namespace_owner(p));
  owners.erase(static_cast<uid_t>(-1));  // gone meanwhile
  return owners;
}

}  // namespace

TEST(Tenants, EachFunctionHasHostIdsOfItsOwnColdAndRestored) {
  ThawdProcess thawd(kPool);
  Lambda l(thawd);
  Handler code(kIds);
  create(l, "first", code);
  create(l, "second", code);
  const auto ids = [&](const std::string& name, const std::string& mode) {
    const auto r = l.invoke(name, "{}", {{"X-Thaw-Start-Mode", mode}});
    EXPECT_EQ(r.result(), status::ok) << r.body();
    EXPECT_EQ(r["X-Thaw-Start-Mode"], mode) << r.body();
    return json::parse(r.body());
  };
  const auto first = ids("first", "cold");
  const auto second = ids("second", "cold");
  EXPECT_EQ(first_host_id(first, "uid_map"), std::to_string(kPoolFirst)) << first;
  EXPECT_EQ(first_host_id(first, "gid_map"), std::to_string(kPoolFirst)) << first;
  EXPECT_EQ(first_host_id(second, "uid_map"), std::to_string(kPoolFirst + kRange)) << second;
  EXPECT_EQ(first.at("uid_map").at(2), std::to_string(kRange));
  // Host side: each function's namespaces are owned by its first host uid.
  EXPECT_EQ(owners_of_instances(thawd), (std::set<uid_t>{kPoolFirst, kPoolFirst + kRange}));

  // A restored instance comes back in namespaces of the same owner.
  ASSERT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 2; }))
      << thawd.log();
  const auto restored = ids("first", "restore");
  EXPECT_EQ(restored, first);
  for (pid_t p : processes_in_cgroups_under(thawd.cgroup_parent())) {
    const auto owner = namespace_owner(p);
    if (owner != static_cast<uid_t>(-1)) {
      EXPECT_TRUE(owner == kPoolFirst || owner == kPoolFirst + kRange) << owner;
    }
  }
  // The ranges are the registry's: the same after a restart.
  thawd.stop();
  ThawdProcess again(kPool, thawd.state_dir());
  Lambda l2(again);
  const auto r = l2.invoke("second", "{}", {{"X-Thaw-Start-Mode", "cold"}});
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_EQ(json::parse(r.body()), second);
}

// The issue's attack: inotify instances held by a function were charged to
// host root (who made every user namespace) and ran out for root itself.
TEST(Tenants, AFunctionThatHoldsEveryInotifyInstanceItMayLeavesRootAndOthersTheirs) {
  int host_limit = 0;
  std::ifstream("/proc/sys/fs/inotify/max_user_instances") >> host_limit;
  ASSERT_GT(host_limit, 0);
  ThawdProcess thawd(kPool);
  Lambda l(thawd);
  Handler hog(R"(
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
held = []
def handler(event, context):
    while True:
        fd = libc.inotify_init1(os.O_CLOEXEC)
        if fd < 0:
            return {"held": len(held), "errno": ctypes.get_errno()}
        held.append(fd)
)");
  Handler modest(R"(
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def handler(event, context):
    fds = [libc.inotify_init1(os.O_CLOEXEC) for _ in range(event["n"])]
    ok = sum(1 for fd in fds if fd >= 0)
    for fd in fds:
        if fd >= 0:
            os.close(fd)
    return {"ok": ok}
)");
  create(l, "hog", hog, kNoSnapshot);
  create(l, "modest", modest, kNoSnapshot);
  const auto r = l.invoke("hog");
  ASSERT_EQ(r.result(), status::ok) << r.body();
  const auto held = json::parse(r.body());
  // The function's own quota, the host's per-user limit, all of it its own.
  EXPECT_EQ(held.at("held"), host_limit) << held;
  EXPECT_EQ(held.at("errno"), EMFILE) << held;

  // The hog's instance stays warm, holding them. Root can still make one...
  const int mine = inotify_init1(IN_CLOEXEC);
  EXPECT_GE(mine, 0) << "root's inotify instances ran out: " << strerror(errno);
  if (mine >= 0) close(mine);
  // ... and so can another function, up to its own quota.
  const auto other = l.invoke("modest", json{{"n", 16}}.dump());
  ASSERT_EQ(other.result(), status::ok) << other.body();
  EXPECT_EQ(json::parse(other.body()).at("ok"), 16) << other.body();
}

TEST(Tenants, APoolThatRunsOutRefusesTheNextFunctionUntilOneIsDeleted) {
  ThawdProcess thawd({"--id-pool-first", std::to_string(kPoolFirst), "--id-pool-ranges", "2"});
  Lambda l(thawd);
  Handler code(kIds);
  create(l, "one", code, kNoSnapshot);
  create(l, "two", code, kNoSnapshot);
  json body = {{"FunctionName", "three"},
               {"Runtime", "python3.11"},
               {"Handler", "handler.handler"},
               {"Role", "arn:aws:iam::000000000000:role/test"},
               {"Code", {{"ZipFile", zip_base64(code.dir())}}}};
  const auto refused = l.client.request(verb::post, kFunctions, body.dump());
  EXPECT_EQ(refused.result(), status::internal_server_error) << refused.body();
  EXPECT_EQ(refused["x-amzn-ErrorType"], "ServiceException");
  EXPECT_NE(refused.body().find("--id-pool-ranges"), std::string::npos) << refused.body();
  EXPECT_EQ(l.client.request(verb::get, std::string(kFunctions) + "/three").result(),
            status::not_found);

  // Deleting one gives its range back.
  ASSERT_EQ(l.client.request(verb::delete_, std::string(kFunctions) + "/one").result(),
            status::no_content);
  create(l, "three", code, kNoSnapshot);
  const auto r = l.invoke("three");
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_EQ(first_host_id(json::parse(r.body()), "uid_map"), std::to_string(kPoolFirst));
}

TEST(Tenants, APoolThatOverlapsTheHostsUsersIsRefusedAtStart) {
  const auto [status_code, output] =
      run_program({THAWD_PATH, "--id-pool-first", "0", "--state-dir", "/nonexistent"});
  EXPECT_NE(status_code, 0);
  EXPECT_NE(output.find("--id-pool-first: must be at least 65536"), std::string::npos) << output;
  const auto [past_code, past] =
      run_program({THAWD_PATH, "--id-pool-first", "4294000000", "--id-pool-ranges", "100"});
  EXPECT_NE(past_code, 0);
  EXPECT_NE(past.find("run past the last host id"), std::string::npos) << past;
}
