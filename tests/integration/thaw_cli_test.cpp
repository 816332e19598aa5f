// The thaw command-line client against a real thawd: every command, its
// output and its exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "thawd_process.hpp"

using namespace thaw::itest;

namespace {

const std::string kExamples = std::string(THAW_SOURCE_DIR) + "/images/examples/";

// Runs thaw against `thawd` (token from its state directory); exit code and output.
std::pair<int, std::string> thaw_cli(const ThawdProcess& thawd, std::vector<std::string> args) {
  std::vector<std::string> argv = {THAW_PATH, "--endpoint",
                                   "127.0.0.1:" + std::to_string(thawd.port()), "--state-dir",
                                   thawd.state_dir()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto [status, out] = run_program(argv);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(ThawCli, DeploysInvokesListsShowsAndRemovesAFunction) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  auto [rc, out] =
      thaw_cli(thawd, {"deploy", "hello", kExamples + "python-hello", "--runtime", "python3.11",
                       "--handler", "handler.handler", "--memory", "256", "--env", "GREETING=hi"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "hello created")) << out;
  EXPECT_TRUE(has(out, "snapshot")) << out;  // progress of the snapshot build

  std::tie(rc, out) = thaw_cli(thawd, {"invoke", "hello", R"({"name":"cli"})", "--log"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "hello cli")) << out;
  EXPECT_TRUE(has(out, "REPORT RequestId")) << out;  // the log tail, on stderr

  std::tie(rc, out) = thaw_cli(thawd, {"ls"});
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(has(out, "hello") && has(out, "python3.11") && has(out, "256")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"get", "hello"});
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(has(out, "\"GREETING\": \"hi\"")) << out;

  // Deploying again updates code and configuration.
  std::tie(rc, out) = thaw_cli(thawd, {"deploy", "hello", kExamples + "python-errors", "--runtime",
                                       "python3.11", "--handler", "handler.echo", "--no-snapshot"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "hello updated")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"invoke", "hello", R"({"echo":7})"});
  EXPECT_TRUE(has(out, "\"echo\": 7")) << out;

  std::tie(rc, out) = thaw_cli(thawd, {"logs", "hello"});
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(has(out, "REPORT RequestId")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"usage"});
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(has(out, "hello") && has(out, "(total)")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"instances"});
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(has(out, "Idle")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"snapshots"});
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(has(out, "FUNCTION")) << out;

  std::tie(rc, out) = thaw_cli(thawd, {"rm", "hello"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"get", "hello"});
  EXPECT_EQ(rc, 1);
  EXPECT_TRUE(has(out, "ResourceNotFoundException")) << out;
}

TEST(ThawCli, ExitCodesTellWhatWentWrong) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  ASSERT_EQ(thaw_cli(thawd, {"deploy", "fails", kExamples + "python-errors", "--runtime",
                             "python3.11", "--handler", "handler.raise_error", "--no-snapshot"})
                .first,
            0);
  auto [rc, out] = thaw_cli(thawd, {"invoke", "fails"});
  EXPECT_EQ(rc, 4) << out;  // the function failed
  EXPECT_TRUE(has(out, "ValueError")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"invoke", "missing"});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_TRUE(has(out, "ResourceNotFoundException")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"invoke"});
  EXPECT_EQ(rc, 2) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"frobnicate"});
  EXPECT_EQ(rc, 2) << out;
  std::tie(rc, out) = thaw_cli(
      thawd, {"deploy", "x", "/nonexistent", "--runtime", "python3.11", "--handler", "a.b"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_TRUE(has(out, "/nonexistent")) << out;
  // A wrong token: thawd refuses.
  auto [status, wrong] =
      run_program({THAW_PATH, "--endpoint", "127.0.0.1:" + std::to_string(thawd.port()), "--token",
                   std::string(64, 'a'), "ls"});
  EXPECT_EQ(WEXITSTATUS(status), 1) << wrong;
  EXPECT_TRUE(has(wrong, "UnrecognizedClientException")) << wrong;
}

TEST(ThawCli, ConcurrencyAsyncInvocationsAndZipFiles) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  const auto zip = thawd.state_dir() + "/../hello.zip";
  auto [zst, zout] = run_program({"/usr/bin/python3", "-c",
                                  "import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],'w') as z: "
                                  "z.write(sys.argv[2],'handler.py')",
                                  zip, kExamples + "python-hello/handler.py"});
  ASSERT_EQ(WEXITSTATUS(zst), 0) << zout;
  auto [rc, out] = thaw_cli(thawd, {"deploy", "zipped", zip, "--runtime", "python3.11", "--handler",
                                    "handler.handler", "--no-snapshot"});
  ASSERT_EQ(rc, 0) << out;

  std::tie(rc, out) = thaw_cli(thawd, {"concurrency", "zipped", "0"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "reserved concurrency 0")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"invoke", "zipped"});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_TRUE(has(out, "TooManyRequestsException")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"concurrency", "zipped", "--delete"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"concurrency", "zipped"});
  EXPECT_TRUE(has(out, "no reserved concurrency")) << out;

  std::tie(rc, out) = thaw_cli(thawd, {"invoke", "zipped", "--async"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "accepted")) << out;
  std::tie(rc, out) = thaw_cli(thawd, {"invoke", "zipped", "--start-mode", "cold"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(has(out, "hello")) << out;
}
