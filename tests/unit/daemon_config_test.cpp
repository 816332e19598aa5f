#include <gtest/gtest.h>

#include "invoker/daemon_config.hpp"
#include "sandbox/error.hpp"

using namespace thaw::invoker;

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
