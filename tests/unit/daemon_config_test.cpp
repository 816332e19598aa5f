#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <fstream>

#include "invoker/daemon/daemon_config.hpp"
#include "temp_dir.hpp"
#include "thaw/error.hpp"

using namespace thaw::invoker;

namespace {

// Each of `values` given to `flag` is refused with `message`.
void expect_refused(const std::string& flag, std::initializer_list<const char*> values,
                    const std::string& message) {
  for (const char* bad : values) {
    try {
      parse_daemon_args({flag, bad});
      ADD_FAILURE() << flag << " " << bad << " was accepted";
    } catch (const thaw::Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

}  // namespace

TEST(DaemonConfig, Defaults) {
  const auto c = parse_daemon_args({});
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8080);
  EXPECT_EQ(c.state_dir, ".thaw");
}

TEST(DaemonConfig, ListenAndStateDir) {
  const auto c = parse_daemon_args({"--listen", "0.0.0.0:9000", "--state-dir", "/var/lib/thaw"});
  EXPECT_EQ(c.listen_host, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 9000);
  EXPECT_EQ(c.state_dir, "/var/lib/thaw");
}

TEST(DaemonConfig, BadInputNamesTheFlag) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--listen", "nope"},
                                               {"--listen", "1.2.3.4:99999"},
                                               {"--listen", "h:12a"},
                                               {"--listen"},
                                               {"--frobnicate"},
                                               {"--http-threads", "0"}}) {
    try {
      parse_daemon_args(args);
      ADD_FAILURE() << "accepted " << args[0];
    } catch (const thaw::Error& e) {
      EXPECT_NE(std::string(e.what()).find(args[0]), std::string::npos) << e.what();
    }
  }
}

TEST(DaemonConfig, HelpDocumentsEveryFlag) {
  const auto help = daemon_help();
  for (const char* flag : {"--listen", "--state-dir", "--http-threads", "--version", "--help"})
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
}

TEST(DaemonConfig, SchedulingFlags) {
  const auto c = parse_daemon_args({"--max-concurrency", "8", "--memory-budget-mb", "4096",
                                    "--keep-alive", "60", "--async-workers", "1"});
  EXPECT_EQ(c.max_concurrency, 8u);
  EXPECT_EQ(c.memory_budget_mb, 4096u);
  EXPECT_EQ(c.keep_alive_s, 60u);
  EXPECT_EQ(c.async_workers, 1u);
  // No workers would accept events that never run and never expire.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--max-concurrency", "0"},
                                               {"--async-workers", "0"},
                                               {"--keep-alive", "-1"},
                                               {"--memory-budget-mb", "12"}}) {
    EXPECT_THROW(parse_daemon_args(args), thaw::Error) << args[0];
  }
}

TEST(DaemonConfig, WarmMemoryIsOnByDefaultAndCanBeTurnedOff) {
  EXPECT_EQ(parse_daemon_args({}).warm_memory_mb, 256u);
  EXPECT_EQ(parse_daemon_args({"--warm-memory-mb", "0"}).warm_memory_mb, 0u);
  EXPECT_EQ(parse_daemon_args({"--warm-memory-mb", "1024"}).warm_memory_mb, 1024u);
  expect_refused("--warm-memory-mb", {"-5", "lots", "65537", ""},
                 "--warm-memory-mb: must be a number from 0 to 65536");
  EXPECT_NE(daemon_help().find("--warm-memory-mb"), std::string::npos);
}

TEST(DaemonConfig, TheSnapshotCacheIsOffByDefaultAndSizedInMegabytes) {
  EXPECT_EQ(parse_daemon_args({}).snapshot_cache_mb, 0u);
  EXPECT_EQ(parse_daemon_args({"--snapshot-cache-mb", "512"}).snapshot_cache_mb, 512u);
  expect_refused("--snapshot-cache-mb", {"-1", "half", "1048577", ""},
                 "--snapshot-cache-mb: must be a number from 0 to 1048576");
  EXPECT_NE(daemon_help().find("--snapshot-cache-mb"), std::string::npos);
}

TEST(DaemonConfig, AConfigFileGivesFlagsAndTheCommandLineWins) {
  thaw::test::TempDir dir;
  const auto path = dir.path() + "/thawd.json";
  std::ofstream(path)
      << R"({"listen": "0.0.0.0:9000", "keep-alive": 30, "no-snapshots": true, "state-dir": "/x"})";
  const auto c = parse_daemon_args({"--config", path, "--state-dir", "/y"});
  EXPECT_EQ(c.listen_port, 9000);
  EXPECT_EQ(c.keep_alive_s, 30u);
  EXPECT_FALSE(c.snapshots);
  EXPECT_EQ(c.state_dir, "/y");
  std::ofstream(path, std::ios::trunc) << R"({"keep-alive": "soon"})";
  try {
    parse_daemon_args({"--config", path});
    ADD_FAILURE() << "accepted a bad config file";
  } catch (const thaw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--keep-alive"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_daemon_args({"--config", "/nonexistent/thawd.json"}), thaw::Error);
}

// false leaves a switch off; on anything but a switch it is a mistake, said.
TEST(DaemonConfig, FalseInAConfigFileIsForSwitchesOnly) {
  thaw::test::TempDir dir;
  const auto path = dir.path() + "/thawd.json";
  std::ofstream(path) << R"({"no-snapshots": false, "public-trigger": false})";
  const auto c = parse_daemon_args({"--config", path});
  EXPECT_TRUE(c.snapshots);
  EXPECT_FALSE(c.public_trigger);
  for (const char* bad : {R"({"no-snapshot": false})", R"({"listen": false})"}) {
    std::ofstream(path, std::ios::trunc) << bad;
    try {
      parse_daemon_args({"--config", path});
      ADD_FAILURE() << "accepted " << bad;
    } catch (const thaw::Error& e) {
      EXPECT_NE(std::string(e.what()).find("false is only for switches"), std::string::npos)
          << e.what();
    }
  }
}

TEST(DaemonConfig, CriuIsFoundUnlessAnAbsolutePathIsGiven) {
  EXPECT_EQ(parse_daemon_args({}).criu, "");
  EXPECT_EQ(parse_daemon_args({"--criu", "/opt/criu/sbin/criu"}).criu, "/opt/criu/sbin/criu");
  expect_refused("--criu", {"", "criu", "sbin/criu"}, "--criu: must be an absolute path");
}

TEST(DaemonConfig, CriuSparesDefaultToFourAndZeroTurnsThemOff) {
  EXPECT_EQ(parse_daemon_args({}).criu_spares, 4u);
  EXPECT_EQ(parse_daemon_args({"--criu-spares", "0"}).criu_spares, 0u);
  expect_refused("--criu-spares", {"-1", "65", "some"},
                 "--criu-spares: must be a number from 0 to 64");
  EXPECT_NE(daemon_help().find("--criu-spares"), std::string::npos);
}

// As URLs write them: an IPv6 address in brackets, or a name this host
// resolves (localhost is in /etc/hosts: no query leaves the machine).
TEST(DaemonConfig, ListenTakesBracketedIPv6AndNames) {
  auto c = parse_daemon_args({"--listen", "[::1]:9000"});
  EXPECT_EQ(c.listen_host, "::1");
  EXPECT_EQ(c.listen_port, 9000);
  c = parse_daemon_args({"--listen", "localhost:9001"});
  EXPECT_TRUE(boost::asio::ip::make_address(c.listen_host).is_loopback()) << c.listen_host;
  EXPECT_EQ(c.listen_port, 9001);
  expect_refused("--listen", {"[not-an-address]:80", "[127.0.0.1]:80"}, "--listen: \"[");
}

// --help states each default from DaemonConfig itself, so the two cannot
// drift apart.
TEST(DaemonConfig, HelpShowsTheConfigsOwnDefaults) {
  const auto help = daemon_help();
  const DaemonConfig d;
  EXPECT_EQ(help.find("{default}"), std::string::npos);
  for (const std::string& value :
       {std::to_string(d.http_threads), std::to_string(d.max_concurrency),
        std::to_string(d.keep_alive_s), std::to_string(d.retry_backoff_ms),
        std::to_string(d.max_connections), std::to_string(d.max_output_kb),
        std::to_string(d.id_pool_first), std::to_string(d.read_timeout_s),
        std::to_string(d.criu_spares), std::to_string(d.warm_memory_mb), d.state_dir,
        d.cgroup_parent, d.listen_host + ":" + std::to_string(d.listen_port)})
    EXPECT_NE(help.find("(default " + value), std::string::npos) << value;
}
