// Egress against the real thawd: functions reach what their policy allows in
// an outside world the test makes (greeting servers, a DNS server, a
// PostgreSQL server in a network namespace of its own), cold and restored,
// and nothing else; links and firewall rules go with their instances and
// with thawd, also after a kill -9. No packet leaves the machine: the
// instances' resolvers and destinations are the test's own addresses.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "lambda_client.hpp"
#include "lambda_requests.hpp"
#include "outside_network.hpp"
#include "python_function.hpp"
#include "sandbox/egress_firewall.hpp"
#include "sandbox/egress_links.hpp"
#include "sandbox/netlink.hpp"
#include "thaw/error.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Connects to each "host:port" of the event, says what it heard; resolves
// the event's "resolve" name.
const char* kProbe = R"(
import socket
def handler(event, context):
    out = {}
    for target in event.get("targets", []):
        host, port = target.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=3) as s:
                out[target] = s.recv(100).decode()
        except OSError as e:
            out[target] = "error: " + type(e).__name__
    if "resolve" in event:
        try:
            out["resolved"] = socket.gethostbyname(event["resolve"])
        except OSError as e:
            out["resolved"] = "error: " + type(e).__name__
    return out
)";

// A PostgreSQL server of the test's own in the outside namespace, on
// host(1):5432, trusting every client (there is no one else there).
class PostgresServer {
 public:
  explicit PostgresServer(OutsideNetwork& outside) : outside_(outside) {
    char templ[] = "/tmp/thaw-pg-XXXXXX";
    dir_ = mkdtemp(templ);
    try {
      start();
    } catch (...) {
      fs::remove_all(dir_);
      throw;
    }
  }
  // The server first: it writes into its directory while it runs.
  ~PostgresServer() {
    outside_.stop(pid_);
    fs::remove_all(dir_);
  }

 private:
  void start() {
    const passwd* pg = getpwnam("postgres");
    if (!pg) throw thaw::Error("no postgres user (Debian's postgresql-15 makes it)");
    if (chown(dir_.c_str(), pg->pw_uid, pg->pw_gid) != 0) thaw::throw_errno("chown " + dir_);
    const std::string bin = "/usr/lib/postgresql/15/bin/";
    const auto as_postgres = [&](std::vector<std::string> argv) {
      std::vector<std::string> full = {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres",
                                       "--clear-groups"};
      full.insert(full.end(), argv.begin(), argv.end());
      return full;
    };
    const auto [status, out] = run_program(as_postgres(
        {bin + "initdb", "-D", dir_ + "/data", "--auth=trust", "-U", "postgres", "--no-sync"}));
    if (status != 0) throw thaw::Error("initdb: " + out);
    // Clients come from the test's link (instances behind the host's NAT).
    std::ofstream(dir_ + "/data/pg_hba.conf", std::ios::app) << "host all all 0.0.0.0/0 trust\n";
    pid_ = outside_.run(as_postgres(
        {bin + "postgres", "-D", dir_ + "/data", "-c", "listen_addresses=" + outside_.host_text(1),
         "-c", "unix_socket_directories=" + dir_, "-c", "fsync=off", "-p", "5432"}));
  }

  OutsideNetwork& outside_;
  pid_t pid_ = -1;
  std::string dir_;
};

json merged(json a, const json& b) {
  a.update(b);
  return a;
}

class EgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, links, nftables)";
    subnet_ = test_subnet(216);
    outside_ = std::make_unique<OutsideNetwork>(test_subnet(214), 2);
    outside_->serve_greeting(0, 8080, "hello from 0:8080");
    outside_->serve_greeting(0, 9090, "hello from 0:9090");
    outside_->serve_greeting(1, 8080, "hello from 1:8080");
  }
  std::vector<std::string> thawd_args(std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"--egress-subnet", subnet_.text(), "--egress-dns",
                                     outside_->host_text(0)};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  std::string target(int host, int port) {
    return outside_->host_text(host) + ":" + std::to_string(port);
  }
  json probe(Lambda& l, const std::string& name, const json& event, const std::string& mode = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!mode.empty()) headers.emplace_back("X-Thaw-Start-Mode", mode);
    const auto r = l.invoke(name, event.dump(), headers);
    EXPECT_EQ(r.result(), status::ok) << r.body();
    if (!mode.empty()) {
      EXPECT_EQ(r["X-Thaw-Start-Mode"], mode) << r.body();
    }
    return json::parse(r.body(), nullptr, false);
  }
  // Links of this test's subnet on the host.
  size_t host_links() {
    size_t n = 0;
    const std::string prefix = thaw::sandbox::kEgressLinkPrefix;
    for (const auto& link : thaw::sandbox::Rtnetlink().links())
      if (link.name.rfind(prefix, 0) == 0 && link.name.size() == prefix.size() + 8 &&
          subnet_.contains(
              static_cast<uint32_t>(strtoul(link.name.c_str() + prefix.size(), nullptr, 16))))
        ++n;
    return n;
  }
  bool table_exists() {
    const auto [status, out] = run_program({"/usr/sbin/nft", "list", "table", "inet",
                                            thaw::sandbox::EgressFirewall::table_name(subnet_)});
    return status == 0;
  }

  thaw::sandbox::Ipv4Network subnet_;
  std::unique_ptr<OutsideNetwork> outside_;
};

TEST_F(EgressTest, AllowedPortIsReachedColdAndRestoredAndNothingElse) {
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  Handler code(kProbe);
  create(l, "port", code, {{"Egress", {{"Allow", {outside_->host_text(0) + "/32:8080"}}}}});
  const json event = {{"targets", {target(0, 8080), target(0, 9090), target(1, 8080)}}};
  const json expected = {{target(0, 8080), "hello from 0:8080"},
                         {target(0, 9090), "error: ConnectionRefusedError"},
                         {target(1, 8080), "error: ConnectionRefusedError"}};
  EXPECT_EQ(probe(l, "port", event, "cold"), expected);
  ASSERT_TRUE(
      eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; }));
  // A restore with egress watches criu's pid file (inotify, of which root
  // has 128 host-wide): the watch must end with the restore, not the instance.
  const auto inotify_fds = [&] {
    size_t n = 0;
    for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(thawd.pid()) + "/fd")) {
      std::error_code ec;
      if (fs::read_symlink(fd.path(), ec).string() == "anon_inode:inotify") ++n;
    }
    return n;
  };
  const auto watches = inotify_fds();
  EXPECT_EQ(probe(l, "port", event, "restore"), expected);
  EXPECT_EQ(probe(l, "port", event, "restore"), expected);
  // Closed off the restore's path, a moment later.
  EXPECT_TRUE(eventually([&] { return inotify_fds() == watches; }))
      << "restored instances hold inotify instances";
}

TEST_F(EgressTest, WithoutAPolicyAFunctionReachesNothing) {
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  Handler code(kProbe);
  create(l, "none", code);
  create(l, "explicit-none", code, {{"Egress", {{"Allow", json::array()}}}});
  const json event = {{"targets", {target(0, 8080)}}, {"resolve", "db.thaw.test"}};
  for (const char* name : {"none", "explicit-none"}) {
    auto got = probe(l, name, event, "cold");
    EXPECT_EQ(got[target(0, 8080)], "error: OSError") << got;  // network unreachable
    EXPECT_EQ(got["resolved"].get<std::string>().rfind("error", 0), 0u) << got;
  }
  EXPECT_EQ(host_links(), 0u);
}

TEST_F(EgressTest, TheHostDefaultAppliesToFunctionsWithoutAPolicy) {
  ThawdProcess thawd(thawd_args({"--egress-default", outside_->host_text(1) + "/32"}));
  Lambda l(thawd);
  Handler code(kProbe);
  create(l, "defaulted", code);
  auto got = probe(l, "defaulted", {{"targets", {target(1, 8080), target(0, 8080)}}}, "cold");
  EXPECT_EQ(got[target(1, 8080)], "hello from 1:8080") << got;
  EXPECT_EQ(got[target(0, 8080)], "error: ConnectionRefusedError") << got;
}

TEST_F(EgressTest, ThawdTheHostAndOtherInstancesAreRefused) {
  // thawd listens on the host's end of the test's link, inside the allowed network.
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  // An instance that serves on its own address and tells it.
  Handler server(R"(
import socket, threading
listener = socket.socket()
listener.bind(("0.0.0.0", 7070))
listener.listen()
def serve():
    while True:
        c, _ = listener.accept()
        c.sendall(b"instance")
        c.close()
threading.Thread(target=serve, daemon=True).start()
def handler(event, context):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((event["outside"], 9))
    return s.getsockname()[0]
)");
  Handler code(kProbe);
  const json everything = {{"Egress", {{"Allow", {"0.0.0.0/0"}}}}};
  create(l, "server", server, everything);
  create(l, "prober", code, everything);
  auto r = l.invoke("server", json({{"outside", outside_->host_text(0)}}).dump());
  ASSERT_EQ(r.result(), status::ok) << r.body();
  const auto server_address = json::parse(r.body()).get<std::string>();
  ASSERT_TRUE(subnet_.contains(thaw::sandbox::parse_ipv4_address(server_address)));
  const auto host_end = test_subnet(214).base + 1;  // the host's address on the test's link
  const std::string host_thawd =
      thaw::sandbox::ipv4_text(host_end) + ":" + std::to_string(thawd.port());
  // thawd itself listens on loopback; a server of the host's on the test
  // link's address stands for the host's other services.
  outside_->serve_greeting(0, 7071, "outside");  // (control: the outside is reachable)
  const int host_server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(7072);
  a.sin_addr.s_addr = htonl(host_end);
  ASSERT_EQ(bind(host_server, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(host_server, 4), 0);
  auto got = probe(l, "prober",
                   {{"targets",
                     {server_address + ":7070", thaw::sandbox::ipv4_text(host_end) + ":7072",
                      host_thawd, "127.0.0.1:" + std::to_string(thawd.port()), target(0, 7071)}}});
  close(host_server);
  EXPECT_EQ(got[server_address + ":7070"], "error: ConnectionRefusedError") << got;
  EXPECT_EQ(got[thaw::sandbox::ipv4_text(host_end) + ":7072"], "error: ConnectionRefusedError")
      << got;
  EXPECT_EQ(got[host_thawd], "error: ConnectionRefusedError") << got;
  EXPECT_EQ(got["127.0.0.1:" + std::to_string(thawd.port())], "error: ConnectionRefusedError")
      << got;
  EXPECT_EQ(got[target(0, 7071)], "outside") << got;
}

TEST_F(EgressTest, NamesResolveThroughTheResolverColdAndRestored) {
  outside_->run({"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                 "--no-hosts", "--bind-interfaces", "--listen-address=" + outside_->host_text(0),
                 "--address=/db.thaw.test/" + outside_->host_text(1), "--user=root", "--group=root",
                 "--pid-file", "--log-facility=/dev/null"});
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  Handler code(kProbe);
  create(l, "names", code, {{"Egress", {{"Allow", {outside_->host_text(1) + "/32:8080"}}}}});
  const json event = {{"resolve", "db.thaw.test"}, {"targets", {"db.thaw.test:8080"}}};
  const json expected = {{"resolved", outside_->host_text(1)},
                         {"db.thaw.test:8080", "hello from 1:8080"}};
  // dnsmasq may take a moment to listen.
  ASSERT_TRUE(eventually([&] { return probe(l, "names", event) == expected; }));
  ASSERT_TRUE(
      eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; }));
  EXPECT_EQ(probe(l, "names", event, "restore"), expected);
  // What the instance reads, as the function's configuration says.
  Handler reader(R"(
def handler(event, context):
    return {"resolv.conf": open("/etc/resolv.conf").read(), "hosts": open("/etc/hosts").read()}
)");
  create(l, "reader", reader, {{"Egress", {{"Allow", {outside_->host_text(1) + "/32"}}}}});
  const auto files = probe(l, "reader", json::object());
  EXPECT_NE(files["resolv.conf"].get<std::string>().find("nameserver " + outside_->host_text(0)),
            std::string::npos)
      << files;
  EXPECT_NE(files["hosts"].get<std::string>().find("127.0.0.1 localhost"), std::string::npos);
}

TEST_F(EgressTest, PolicyChangeRetiresIdleInstancesAndAppliesToNewOnes) {
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  Handler code(kProbe);
  create(l, "changing", code,
         merged({{"Egress", {{"Allow", {outside_->host_text(0) + "/32"}}}}}, kNoSnapshot));
  const json event = {{"targets", {target(0, 8080)}}};
  EXPECT_EQ(probe(l, "changing", event)[target(0, 8080)], "hello from 0:8080");
  ASSERT_EQ(l.instances().size(), 1u);
  // Its own, and those made ahead with the namespaces of its next starts.
  EXPECT_GE(host_links(), 1u);
  const auto r =
      l.client.request(http::verb::put, std::string(kFunctions) + "/changing/configuration",
                       json({{"Egress", {{"Allow", json::array()}}}}).dump());
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_EQ(json::parse(r.body())["Egress"]["Allow"], json::array());
  EXPECT_EQ(json::parse(r.body())["Egress"]["BandwidthMbps"], 0);
  EXPECT_TRUE(eventually([&] { return l.instances().empty(); })) << l.instances();
  EXPECT_EQ(probe(l, "changing", event)[target(0, 8080)], "error: OSError");
  EXPECT_TRUE(eventually([&] { return host_links() == 0; })) << host_links();
}

TEST_F(EgressTest, BadPoliciesAreRefusedWithTheirReason) {
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  Handler code(kProbe);
  const auto refused = [&](const json& egress) {
    json body = {{"FunctionName", "bad"},
                 {"Runtime", "python3.11"},
                 {"Handler", "handler.handler"},
                 {"Role", "arn:aws:iam::000000000000:role/test"},
                 {"Code", {{"ZipFile", zip_base64(code.dir())}}},
                 {"Egress", egress}};
    const auto r = l.client.request(http::verb::post, kFunctions, body.dump());
    EXPECT_EQ(r.result(), status::bad_request) << r.body();
    return json::parse(r.body(), nullptr, false).value("message", "");
  };
  EXPECT_NE(refused({{"Allow", {"10.0.0.1/8"}}}).find("host bits are set"), std::string::npos);
  EXPECT_NE(refused({{"Allow", {"10.0.0.0/8:0"}}}).find("a port is 1 to 65535"), std::string::npos);
  EXPECT_NE(refused({{"Allow", "10.0.0.0/8"}}).find("Egress.Allow: required, a list"),
            std::string::npos);
  EXPECT_NE(refused({{"Allow", json::array()}, {"Deny", json::array()}}).find("unknown field"),
            std::string::npos);
  EXPECT_NE(refused("everything").find("must be an object"), std::string::npos);
  EXPECT_NE(refused({{"Allow", json::array()}, {"BandwidthMbps", 100001}}).find("at most 100000"),
            std::string::npos);
  EXPECT_NE(refused({{"Allow", json::array()}, {"ConnectionsPerSecond", -1}})
                .find("ConnectionsPerSecond: must be a whole number"),
            std::string::npos);
}

TEST_F(EgressTest, BytesInAndOutAreCountedPerInvocation) {
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  Handler code(kProbe);
  create(l, "counted", code, {{"Egress", {{"Allow", {outside_->host_text(0) + "/32"}}}}});
  for (int i = 0; i < 3; ++i) probe(l, "counted", {{"targets", {target(0, 8080)}}});
  ASSERT_TRUE(eventually([&] { return l.usage_of("counted").value("Invocations", 0) == 3; }));
  const auto usage = l.usage_of("counted");
  // Three connections, each a handshake, a greeting of 17 bytes and a close.
  EXPECT_GT(usage["NetworkInBytes"].get<uint64_t>(), 3u * 17) << usage;
  EXPECT_GT(usage["NetworkOutBytes"].get<uint64_t>(), 3u * 40) << usage;
  const auto metrics = l.client.request(http::verb::get, "/metrics").body();
  EXPECT_NE(metrics.find("thaw_network_received_bytes_total{function=\"counted\"}"),
            std::string::npos);
}

TEST_F(EgressTest, AHundredInstancesLeaveNothingBehindAlsoAfterKill9) {
  ThawdProcess thawd(thawd_args({"--max-concurrency", "100"}));
  Lambda l(thawd);
  Handler code(R"(
import time
def handler(event, context):
    time.sleep(event["sleep"])
    return "done"
)");
  create(l, "many", code,
         merged({{"Egress", {{"Allow", {outside_->host_text(0) + "/32"}}}}}, kNoSnapshot));
  std::vector<std::future<status>> calls;
  for (int i = 0; i < 100; ++i)
    calls.push_back(std::async(std::launch::async, [&] {
      return l.invoke("many", json({{"sleep", 20}}).dump()).result();
    }));
  EXPECT_TRUE(eventually([&] { return host_links() >= 100; }, std::chrono::seconds(120)))
      << host_links();
  EXPECT_TRUE(table_exists());
  thawd.kill_hard();
  for (auto& c : calls) c.wait();
  // A restart sweeps what the killed thawd left, even with no egress asked of it.
  ThawdProcess again(thawd_args(), thawd.state_dir());
  EXPECT_TRUE(eventually([&] { return host_links() == 0; })) << host_links();
  EXPECT_FALSE(table_exists());
  // And a clean stop after use leaves nothing either.
  Lambda l2(again);
  create(l2, "after", code, {{"Egress", {{"Allow", {outside_->host_text(0) + "/32"}}}}});
  EXPECT_EQ(l2.invoke("after", json({{"sleep", 0}}).dump()).result(), status::ok);
  EXPECT_TRUE(table_exists());
  EXPECT_EQ(again.stop(), 0);
  // An instance's end may go with its namespace, which the kernel tears
  // down a moment after the last process in it has gone.
  EXPECT_TRUE(eventually([&] { return host_links() == 0; })) << host_links();
  EXPECT_FALSE(table_exists());
}

TEST_F(EgressTest, PythonExampleQueriesPostgresColdAndRestored) {
  PostgresServer db(*outside_);
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  l.create("pg", "handler.handler", "python-postgres",
           {{"Egress", {{"Allow", {outside_->host_text(1) + "/32:5432"}}}},
            {"Environment", {{"Variables", {{"PGHOST", outside_->host_text(1)}}}}},
            {"Timeout", 30}});
  const json query = {{"sql", "SELECT 6 * 7"}};
  // The server may take a moment to listen: init fails until it does.
  json cold;
  ASSERT_TRUE(eventually([&] {
    const auto r = l.invoke("pg", query.dump());
    cold = json::parse(r.body(), nullptr, false);
    return r.result() == status::ok && !r.count("X-Amz-Function-Error");
  })) << cold;
  EXPECT_EQ(cold["rows"], json::parse("[[42]]")) << cold;
  EXPECT_EQ(cold["connections_opened"], 1) << cold;
  ASSERT_TRUE(
      eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; }));
  // Two restored copies: each reconnected in its hook, each on a server
  // process (so a connection) of its own.
  const auto first = probe(l, "pg", query, "restore");
  const auto second = probe(l, "pg", query, "restore");
  EXPECT_EQ(first["rows"], json::parse("[[42]]")) << first;
  EXPECT_EQ(first["connections_opened"], 2) << first;
  EXPECT_EQ(second["connections_opened"], 2) << second;
  EXPECT_NE(first["backend_pid"], second["backend_pid"]);
  EXPECT_NE(first["backend_pid"], cold["backend_pid"]);
  // Through a criu started ahead too, which must know before it reads the
  // images that their connections were saved closed.
  const auto spare_hits = [&] {
    const auto metrics = l.client.request(http::verb::get, "/metrics").body();
    const std::string key = "thaw_snapshot_events_total{event=\"hit_criu_ahead\"} ";
    const auto at = metrics.find(key);
    return at == std::string::npos ? 0 : std::stoi(metrics.substr(at + key.size()));
  };
  ASSERT_TRUE(eventually([&] {
    probe(l, "pg", query, "restore");
    return spare_hits() > 0;
  })) << "no restore went through a criu started ahead";
  EXPECT_EQ(probe(l, "pg", query, "restore")["connections_opened"], 2);
}

TEST_F(EgressTest, NodeExampleCallsAnHttpServiceColdAndRestored) {
  // Removed at the end, whatever fails in between.
  struct Www {
    std::string dir;
    Www() {
      char templ[] = "/tmp/thaw-www-XXXXXX";
      dir = mkdtemp(templ);
    }
    ~Www() { fs::remove_all(dir); }
  } site;
  const std::string& www = site.dir;
  std::ofstream(www + "/status.json") << R"({"service": "up"})";
  outside_->run({"python3", "-m", "http.server", "--bind", outside_->host_text(0), "--directory",
                 www, "8081"});
  ThawdProcess thawd(thawd_args());
  Lambda l(thawd);
  const auto body =
      json::parse(create_body("web", "nodejs20.x", "index.handler", "node-http-egress"));
  auto request = body;
  request.update(
      {{"Egress", {{"Allow", {outside_->host_text(0) + "/32:8081"}}}},
       {"Environment",
        {{"Variables",
          {{"SERVICE_URL", "http://" + outside_->host_text(0) + ":8081/status.json"}}}}}});
  ASSERT_EQ(l.client.request(http::verb::post, kFunctions, request.dump()).result(),
            status::created);
  json got;
  ASSERT_TRUE(eventually([&] {
    const auto r = l.invoke("web", "{}");
    got = json::parse(r.body(), nullptr, false);
    return r.result() == status::ok && got.value("status", 0) == 200;
  })) << got;
  EXPECT_EQ(got["body"], R"({"service": "up"})");
  ASSERT_TRUE(
      eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; }));
  got = probe(l, "web", json::object(), "restore");
  EXPECT_EQ(got["status"], 200) << got;
  // Not allowed elsewhere: a URL on another port is refused.
  got =
      json::parse(l.invoke("web", json({{"url", "http://" + target(0, 8080) + "/"}}).dump()).body(),
                  nullptr, false);
  EXPECT_NE(got.dump().find("fetch failed"), std::string::npos) << got;
}

}  // namespace
