// The thaw command-line client against a real thawd: every command, what it
// prints, and the exit codes scripts rely on.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "lambda_requests.hpp"
#include "thawd_process.hpp"

extern char** environ;

using namespace thaw::itest;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kExamples = std::string(THAW_SOURCE_DIR) + "/images/examples/";

// A directory under /tmp, removed with everything in it however the test ends.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/thaw-cli-it-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The environment thaw runs with: the test's own, without THAW_* (the tests
// say what they mean), plus `extra` ("NAME=VALUE").
std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("THAW_", 0) != 0) env.push_back(*e);
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

pid_t spawn_thaw(std::vector<std::string> argv, const std::vector<std::string>& env, int in_fd,
                 int out_fd, int err_fd) {
  argv.insert(argv.begin(), THAW_PATH);
  auto envp = child_environment(env);
  auto args = c_strings(argv);
  auto envs = c_strings(envp);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, THAW_PATH, &actions, nullptr, args.data(), envs.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn thaw failed");
  return pid;
}

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct Ran {
  int code = -1;
  std::string out, err;
  std::string all() const { return out + err; }
};

// Runs thaw to completion, stdout and stderr apart; `input` is its stdin.
Ran run_thaw(const std::vector<std::string>& argv, const std::string& input = "",
             const std::vector<std::string>& env = {}) {
  TempDir dir;
  std::ofstream(dir / "in") << input;
  const int in = open((dir / "in").c_str(), O_RDONLY | O_CLOEXEC);
  const int out = open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  const int err = open((dir / "err").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  const pid_t pid = spawn_thaw(argv, env, in, out, err);
  close(in);
  close(out);
  close(err);
  int status = 0;
  waitpid(pid, &status, 0);
  return {exit_code(status), read_file(dir / "out"), read_file(dir / "err")};
}

std::vector<std::string> with_thawd(const ThawdProcess& thawd, std::vector<std::string> args) {
  std::vector<std::string> argv = {"--endpoint", "127.0.0.1:" + std::to_string(thawd.port()),
                                   "--state-dir", thawd.state_dir()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// thaw against `thawd`, its token taken from thawd's state directory.
Ran thaw_cli(const ThawdProcess& thawd, std::vector<std::string> args,
             const std::string& input = "") {
  return run_thaw(with_thawd(thawd, std::move(args)), input);
}

// A thaw that keeps running (logs --follow): its output is read as it comes.
class RunningThaw {
 public:
  explicit RunningThaw(const std::vector<std::string>& argv) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_ = spawn_thaw(argv, {}, in, fds[1], fds[1]);
    close(in);
    close(fds[1]);
    out_fd_ = fds[0];
  }
  ~RunningThaw() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_fd_);
  }
  RunningThaw(const RunningThaw&) = delete;
  RunningThaw& operator=(const RunningThaw&) = delete;

  // Reads until `text` has been printed (true), or thaw ends or `timeout` passes.
  bool wait_for(const std::string& text, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const auto n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) return output_.find(text) != std::string::npos;
      output_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  // Sends `signal` (0: none) and waits for thaw to exit; its exit code.
  int finish(int signal) {
    if (signal) kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    // What it printed last, up to the end of the pipe.
    char buf[4096];
    for (ssize_t n; (n = read(out_fd_, buf, sizeof buf)) > 0;)
      output_.append(buf, static_cast<size_t>(n));
    return exit_code(status);
  }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string output_;
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void deploy(const ThawdProcess& thawd, const std::string& name, const std::string& example,
            const std::string& handler) {
  const auto r = thaw_cli(thawd, {"deploy", name, kExamples + example, "--runtime", "python3.11",
                                  "--handler", handler, "--no-snapshot"});
  ASSERT_EQ(r.code, 0) << r.all();
}

}  // namespace

TEST(ThawCli, DeploysADirectoryInvokesListsShowsAndRemovesIt) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  auto r = thaw_cli(
      thawd, {"deploy", "hello", kExamples + "python-hello", "--runtime", "python3.11", "--handler",
              "handler.handler", "--memory", "256", "--env", "GREETING=hi", "--env", "MOOD=calm"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "hello created (python3.11, 256 MB")) << r.out;
  // The snapshot is waited for (python3.11), with one of the two endings.
  EXPECT_TRUE(has(r.out, "snapshot ready (") || has(r.out, "snapshot not ready yet")) << r.all();

  r = thaw_cli(thawd, {"invoke", "hello", R"({"name":"cli"})"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(json::parse(r.out), json({{"message", "hello cli"}})) << r.out;

  r = thaw_cli(thawd, {"ls"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "NAME") && has(r.out, "LAST MODIFIED")) << r.out;
  EXPECT_TRUE(has(r.out, "hello") && has(r.out, "python3.11") && has(r.out, "256 MB")) << r.out;

  r = thaw_cli(thawd, {"get", "hello"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "Handler:") && has(r.out, "handler.handler")) << r.out;
  EXPECT_TRUE(has(r.out, "GREETING=hi") && has(r.out, "MOOD=calm")) << r.out;

  r = thaw_cli(thawd, {"rm", "hello"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "hello deleted")) << r.out;
  r = thaw_cli(thawd, {"get", "hello"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "thaw: ResourceNotFoundException: ")) << r.err;
}

TEST(ThawCli, ListsEveryPageOfFunctions) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  // More than one page (thaw asks for 50 at a time); created over HTTP, quickly.
  HttpClient http_client(thawd.port(), thawd.token());
  auto body = json::parse(create_body("f", "python3.11", "handler.handler", "python-hello"));
  body["SnapStart"] = {{"ApplyOn", "None"}};
  constexpr int kFunctions = 55;
  for (int i = 0; i < kFunctions; ++i) {
    body["FunctionName"] = "f" + std::to_string(100 + i);
    ASSERT_EQ(http_client.request(http::verb::post, "/2015-03-31/functions", body.dump()).result(),
              http::status::created);
  }
  auto r = thaw_cli(thawd, {"--json", "ls"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(json::parse(r.out)["Functions"].size(), static_cast<size_t>(kFunctions));
  r = thaw_cli(thawd, {"ls"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "f100 ") && has(r.out, "f149 ") && has(r.out, "f154 ")) << r.out;
}

TEST(ThawCli, DeploysAZipFileAndUpdatesAnExistingFunction) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  TempDir tmp;
  const auto zip = tmp / "hello.zip";
  const std::string zip_it =
      "import sys, zipfile\n"
      "with zipfile.ZipFile(sys.argv[1], 'w') as z: z.write(sys.argv[2], 'handler.py')";
  const auto [status, out] =
      run_program({"/usr/bin/python3", "-c", zip_it, zip, kExamples + "python-hello/handler.py"});
  ASSERT_EQ(exit_code(status), 0) << out;

  auto r = thaw_cli(thawd, {"deploy", "zipped", zip, "--runtime", "python3.11", "--handler",
                            "handler.handler", "--no-snapshot"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "zipped created")) << r.out;
  EXPECT_FALSE(has(r.all(), "snapshot")) << r.all();  // --no-snapshot: nothing to wait for
  r = thaw_cli(thawd, {"invoke", "zipped"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "hello world")) << r.out;

  // Deployed again: new code, then the configuration given now.
  r = thaw_cli(thawd, {"deploy", "zipped", kExamples + "python-errors", "--runtime", "python3.11",
                       "--handler", "handler.echo", "--timeout", "7", "--no-snapshot"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "zipped updated")) << r.out;
  r = thaw_cli(thawd, {"--json", "get", "zipped"});
  ASSERT_EQ(r.code, 0) << r.all();
  const auto config = json::parse(r.out)["Configuration"];
  EXPECT_EQ(config["Handler"], "handler.echo");
  EXPECT_EQ(config["Timeout"], 7);
  r = thaw_cli(thawd, {"invoke", "zipped", R"({"echo":7})"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(json::parse(r.out), json({{"echo", 7}})) << r.out;
}

TEST(ThawCli, RefusesPackagesItCannotSend) {
  TempDir tmp;
  const std::vector<std::string> command = {"--endpoint", "127.0.0.1:1", "deploy", "f"};
  const std::vector<std::string> flags = {"--runtime", "python3.11", "--handler", "a.b"};
  auto with = [&](const std::string& package) {
    auto argv = command;
    argv.push_back(package);
    argv.insert(argv.end(), flags.begin(), flags.end());
    return run_thaw(argv);
  };
  // Over Lambda's 50 MB (a sparse file: nothing is written).
  const auto big = tmp / "big.zip";
  { std::ofstream(big) << "PK"; }
  fs::resize_file(big, 51u * 1024 * 1024);
  auto r = with(big);
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, "51 MB") && has(r.err, "at most 50 MB")) << r.err;

  std::ofstream(tmp / "notes.txt") << "not a zip";
  r = with(tmp / "notes.txt");
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, "not a zip file")) << r.err;

  r = with(tmp / "missing");
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, tmp / "missing")) << r.err;
}

TEST(ThawCli, ExitCodesTellWhatWentWrong) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  deploy(thawd, "fails", "python-errors", "handler.raise_error");

  // 4: the function failed; its error is still printed.
  auto r = thaw_cli(thawd, {"invoke", "fails"});
  EXPECT_EQ(r.code, 4) << r.all();
  EXPECT_EQ(json::parse(r.out).value("errorType", ""), "ValueError") << r.out;

  // 1: thawd refused, with Lambda's error type and message.
  r = thaw_cli(thawd, {"invoke", "missing"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "thaw: ResourceNotFoundException: ") && has(r.err, "missing")) << r.err;
  r = thaw_cli(thawd, {"invoke", "fails", "{not json"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "InvalidRequestContentException")) << r.err;
  r = thaw_cli(thawd, {"deploy", "f", kExamples + "python-hello", "--runtime", "python3.11",
                       "--handler", "handler.handler", "--memory", "64"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "InvalidParameterValueException") && has(r.err, "MemorySize")) << r.err;

  // 2: bad usage, and what exactly.
  r = thaw_cli(thawd, {"invoke"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, "NAME is missing")) << r.err;
  r = thaw_cli(thawd, {"deploy", "f", kExamples + "python-hello", "--handler", "a.b"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, "--runtime")) << r.err;
  r = thaw_cli(thawd, {"frobnicate"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, "unknown command \"frobnicate\"")) << r.err;
  r = thaw_cli(thawd, {"ls", "--colour"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, "unknown option --colour")) << r.err;
  r = thaw_cli(thawd, {"invoke", "fails", "--start-mode"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_TRUE(has(r.err, "--start-mode needs a value")) << r.err;
  r = thaw_cli(thawd, {"invoke", "fails", "--start-mode", "hot"});
  EXPECT_EQ(r.code, 2) << r.all();
  r = thaw_cli(thawd, {"concurrency", "fails", "-3"});
  EXPECT_EQ(r.code, 2) << r.all();
  r = run_thaw({"--endpoint", "no-port", "ls"});
  EXPECT_EQ(r.code, 2) << r.all();

  // 3: nothing listens any more.
  const auto port = std::to_string(thawd.port());
  thawd.stop();
  r = run_thaw({"--endpoint", "127.0.0.1:" + port, "ls"});
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_TRUE(has(r.err, "cannot reach thawd at 127.0.0.1:" + port)) << r.err;
}

TEST(ThawCli, AThawdThatDoesNotAnswerTimesOut) {
  // A socket that accepts connections (the kernel does) but never answers.
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const auto started = std::chrono::steady_clock::now();
  const auto r = run_thaw({"--endpoint", "127.0.0.1:" + std::to_string(ntohs(addr.sin_port)),
                           "--token", "t", "health"});
  close(listener);
  EXPECT_EQ(r.code, 3) << r.all();
  EXPECT_TRUE(has(r.err, "did not answer within 5 s")) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
}

TEST(ThawCli, TakesTheEndpointAndTokenFromFlagsEnvironmentAndStateDir) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  const auto endpoint = "127.0.0.1:" + std::to_string(thawd.port());
  // The token from the state directory (--state-dir, then $THAW_STATE_DIR).
  auto r = run_thaw({"--endpoint", endpoint, "--state-dir", thawd.state_dir(), "ls"});
  EXPECT_EQ(r.code, 0) << r.all();
  r = run_thaw({"ls"}, "", {"THAW_ENDPOINT=" + endpoint, "THAW_STATE_DIR=" + thawd.state_dir()});
  EXPECT_EQ(r.code, 0) << r.all();
  // $THAW_TOKEN; and --token before it.
  r = run_thaw({"ls"}, "", {"THAW_ENDPOINT=" + endpoint, "THAW_TOKEN=" + thawd.token()});
  EXPECT_EQ(r.code, 0) << r.all();
  r = run_thaw({"ls", "--token", std::string(64, 'a')}, "",
               {"THAW_ENDPOINT=" + endpoint, "THAW_TOKEN=" + thawd.token()});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "UnrecognizedClientException")) << r.err;
  // No token anywhere: thawd says what to send.
  r = run_thaw({"--endpoint", endpoint, "--state-dir", thawd.state_dir() + "/nothing-here", "ls"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "UnrecognizedClientException: Missing credentials")) << r.err;
}

TEST(ThawCli, InvokeReadsStdinAndPrintsTheLogTailToStderr) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  deploy(thawd, "echo", "python-errors", "handler.echo");
  auto r = thaw_cli(thawd, {"invoke", "echo", "-"}, R"({"from":"stdin"})");
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(json::parse(r.out), json({{"from", "stdin"}})) << r.out;

  deploy(thawd, "talker", "python-errors", "handler.log_lines");
  r = thaw_cli(thawd, {"invoke", "talker", "--log"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(r.out, "\"logged\"\n");
  EXPECT_TRUE(has(r.err, "line 2") && has(r.err, "REPORT RequestId")) << r.err;
}

TEST(ThawCli, InvokesAsynchronouslyAndInAForcedStartMode) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  deploy(thawd, "echo", "python-errors", "handler.echo");
  auto r = thaw_cli(thawd, {"invoke", "echo", R"({"queued":true})", "--async"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "accepted")) << r.out;
  r = thaw_cli(thawd, {"--json", "invoke", "echo", "--async"});
  EXPECT_EQ(r.code, 0) << r.all();
  const auto queued = json::parse(r.out);
  EXPECT_EQ(queued["StatusCode"], 202);
  EXPECT_FALSE(queued["RequestId"].get<std::string>().empty());

  r = thaw_cli(thawd, {"invoke", "echo", R"({"n":1})", "--start-mode", "cold"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(json::parse(r.out), json({{"n", 1}})) << r.out;
  r = thaw_cli(thawd, {"invoke", "echo", R"({"n":2})", "--start-mode", "warm"});
  EXPECT_EQ(r.code, 0) << r.all();
  // No snapshot of a --no-snapshot function: thawd says so.
  r = thaw_cli(thawd, {"invoke", "echo", "--start-mode", "restore"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "ResourceConflictException")) << r.err;
}

TEST(ThawCli, ShowsSetsAndRemovesReservedConcurrency) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  deploy(thawd, "echo", "python-errors", "handler.echo");
  auto r = thaw_cli(thawd, {"concurrency", "echo"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "no reserved concurrency")) << r.out;
  r = thaw_cli(thawd, {"concurrency", "echo", "0"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "echo: reserved concurrency 0")) << r.out;
  r = thaw_cli(thawd, {"invoke", "echo"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_TRUE(has(r.err, "TooManyRequestsException")) << r.err;
  r = thaw_cli(thawd, {"--json", "concurrency", "echo"});
  EXPECT_EQ(json::parse(r.out), json({{"ReservedConcurrentExecutions", 0}})) << r.out;
  r = thaw_cli(thawd, {"concurrency", "echo", "--delete"});
  EXPECT_EQ(r.code, 0) << r.all();
  r = thaw_cli(thawd, {"concurrency", "echo"});
  EXPECT_TRUE(has(r.out, "no reserved concurrency")) << r.out;
  EXPECT_EQ(thaw_cli(thawd, {"invoke", "echo"}).code, 0);
  r = thaw_cli(thawd, {"concurrency", "echo", "2", "--delete"});
  EXPECT_EQ(r.code, 2) << r.all();
}

TEST(ThawCli, ReportsUsageInstancesAndSnapshots) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  deploy(thawd, "echo", "python-errors", "handler.echo");
  deploy(thawd, "fails", "python-errors", "handler.raise_error");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(thaw_cli(thawd, {"invoke", "echo"}).code, 0);
  ASSERT_EQ(thaw_cli(thawd, {"invoke", "fails"}).code, 4);

  auto r = thaw_cli(thawd, {"--json", "usage"});
  ASSERT_EQ(r.code, 0) << r.all();
  const auto usage = json::parse(r.out);
  EXPECT_EQ(usage["Totals"]["Invocations"], 4) << r.out;
  EXPECT_EQ(usage["Totals"]["Errors"], 1) << r.out;
  r = thaw_cli(thawd, {"usage"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "INVOCATIONS") && has(r.out, "GB-SECONDS")) << r.out;
  EXPECT_TRUE(has(r.out, "echo") && has(r.out, "fails") && has(r.out, "(total)")) << r.out;

  r = thaw_cli(thawd, {"instances"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "STARTED AS") && has(r.out, "echo") && has(r.out, "128 MB")) << r.out;
  r = thaw_cli(thawd, {"--json", "instances"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_FALSE(json::parse(r.out)["Instances"].empty()) << r.out;

  r = thaw_cli(thawd, {"snapshots"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "FUNCTION") && has(r.out, "IN MEMORY") && has(r.out, "RESTORES")) << r.out;
  r = thaw_cli(thawd, {"--json", "snapshots"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(json::parse(r.out)["Snapshots"].is_array()) << r.out;
}

TEST(ThawCli, LogsPrintsTheTailAndFollowsUntilInterrupted) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  deploy(thawd, "talker", "python-errors", "handler.log_lines");
  ASSERT_EQ(thaw_cli(thawd, {"invoke", "talker"}).code, 0);
  auto r = thaw_cli(thawd, {"logs", "talker"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "line 2") && has(r.out, "REPORT RequestId")) << r.out;
  EXPECT_FALSE(has(r.out, "line 4")) << r.out;
  r = thaw_cli(thawd, {"logs", "nobody"});
  EXPECT_EQ(r.code, 1) << r.all();

  RunningThaw follow(with_thawd(thawd, {"logs", "talker", "--follow"}));
  ASSERT_TRUE(follow.wait_for("REPORT RequestId")) << follow.output();  // the tail, at once
  // Lines written after the tail arrive through the long poll.
  ASSERT_EQ(thaw_cli(thawd, {"invoke", "talker", R"({"lines":5})"}).code, 0);
  EXPECT_TRUE(follow.wait_for("line 4")) << follow.output();
  // Ctrl-C ends it at once (not when the long poll ends), as a success.
  const auto interrupted = std::chrono::steady_clock::now();
  EXPECT_EQ(follow.finish(SIGINT), 0) << follow.output();
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted, std::chrono::seconds(5));
}

TEST(ThawCli, LogsFollowExitsWith3WhenThawdGoesAway) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (sandboxes)";
  ThawdProcess thawd;
  deploy(thawd, "talker", "python-errors", "handler.log_lines");
  ASSERT_EQ(thaw_cli(thawd, {"invoke", "talker"}).code, 0);
  RunningThaw follow(with_thawd(thawd, {"logs", "talker", "--follow"}));
  ASSERT_TRUE(follow.wait_for("REPORT RequestId")) << follow.output();
  // (thawd's stop may wait for the long poll it holds: up to 20 s.)
  thawd.stop();
  EXPECT_EQ(follow.finish(0), 3) << follow.output();
  EXPECT_TRUE(has(follow.output(), "thaw: ")) << follow.output();
}

TEST(ThawCli, HelpDocumentsEveryCommandAndExitCode) {
  auto r = run_thaw({"--help"});
  EXPECT_EQ(r.code, 0) << r.all();
  for (const char* command : {"deploy", "invoke", "ls", "get", "rm", "logs", "snapshots", "usage",
                              "instances", "concurrency", "health"})
    EXPECT_TRUE(has(r.out, std::string("\n  ") + command)) << command;
  for (const char* flag : {"--runtime", "--handler", "--memory", "--timeout", "--env",
                           "--no-snapshot", "--async", "--log", "--start-mode", "--follow",
                           "--delete", "--endpoint", "--token", "--state-dir", "--json"})
    EXPECT_TRUE(has(r.out, flag)) << flag;
  for (const char* code : {"  0  ", "  1  ", "  2  ", "  3  ", "  4  "})
    EXPECT_TRUE(has(r.out, code)) << code;
  r = run_thaw({"deploy", "--help"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_TRUE(has(r.out, "usage: thaw deploy NAME DIR|ZIP")) << r.out;
  r = run_thaw({});
  EXPECT_EQ(r.code, 2) << r.all();
}
