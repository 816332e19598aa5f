// Functions that attack thawd itself, each against the real thawd and the real
// sandbox: bytes that are not UTF-8 in errors and file names, a runtime that
// stops reading its channel, output without end, headers that would split the
// HTTP answer, a /tmp full of files, a /tmp that changes under the snapshot's
// copy. Each time thawd answers in Lambda's shape and keeps serving.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <boost/beast/core/detail/base64.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "http_client.hpp"
#include "lambda_client.hpp"
#include "lambda_requests.hpp"
#include "python_function.hpp"
#include "thawd_process.hpp"

using namespace thaw::itest;
using http::status;
using http::verb;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Running, not a zombie the test has yet to reap.
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < line.size() &&
         line[close_paren + 2] != 'Z';
}

// Writes one frame on the runtime's side of the channel by hand.
constexpr const char* kFrameByHand = R"(
import json, os, struct
def frame(kind, body):
    h = json.dumps({"type": kind}).encode()
    os.write(4, struct.pack(">II", len(h), len(body)) + h + body)
)";

}  // namespace

TEST(HostileFunctions, AnErrorThatIsNotUtf8NeitherEndsThawdNorLosesItsBytes) {
  ThawdProcess thawd;
  Lambda l(thawd);
  Handler code(std::string(kFrameByHand) + R"(
def handler(event, context):
    frame("error", b"\xff\xfe not UTF-8 \xc3")
    os._exit(0)
)");
  // Two functions: each attempt meets a fresh instance (this one exits after
  // its answer, and a second invocation would meet only its exit).
  create(l, "bytes-async", code, kNoSnapshot);
  create(l, "bytes", code, kNoSnapshot);
  // Asynchronously: the failed attempt is logged and queued for a retry.
  ASSERT_EQ(l.invoke("bytes-async", "{}", {{"X-Amz-Invocation-Type", "Event"}}).result(),
            status::accepted);
  EXPECT_TRUE(eventually([&] { return thawd.log().find("\"event_retry\"") != std::string::npos; }))
      << thawd.log();
  // Synchronously: the caller gets the function's bytes as they were.
  const auto sync = l.invoke("bytes");
  EXPECT_EQ(sync.result(), status::ok);
  EXPECT_EQ(sync["X-Amz-Function-Error"], "Unhandled");
  EXPECT_EQ(sync.body(), "\xff\xfe not UTF-8 \xc3");
  EXPECT_TRUE(alive(thawd.pid()));
  EXPECT_EQ(l.client.request(verb::get, "/healthz").result(), status::ok);
}

TEST(HostileFunctions, AFileNameThatIsNotUtf8InTmpIsSnapshottedAndRestored) {
  ThawdProcess thawd;
  Lambda l(thawd);
  Handler code(R"(
import os
fd = os.open(b"/tmp/\xff\xfe-name", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"kept")
os.close(fd)
def handler(event, context):
    with open(b"/tmp/\xff\xfe-name", "rb") as f:
        return {"names": [n.hex() for n in os.listdir(b"/tmp")], "content": f.read().decode()}
)");
  create(l, "names", code);
  ASSERT_EQ(l.invoke("names", "{}", {{"X-Thaw-Start-Mode", "cold"}}).result(), status::ok);
  ASSERT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; }))
      << thawd.log();
  const auto restored = l.invoke("names", "{}", {{"X-Thaw-Start-Mode", "restore"}});
  ASSERT_EQ(restored.result(), status::ok) << restored.body();
  EXPECT_EQ(restored["X-Thaw-Start-Mode"], "restore");
  const auto answer = json::parse(restored.body());
  EXPECT_EQ(answer["names"], json::array({"fffe2d6e616d65"}));
  EXPECT_EQ(answer["content"], "kept");
  EXPECT_TRUE(alive(thawd.pid()));
}

TEST(HostileFunctions, ARuntimeThatStopsReadingItsChannelTimesOut) {
  ThawdProcess thawd;
  Lambda l(thawd);
  // It answers its first invocation by hand, shrinks the pipe it reads
  // events from and never reads again.
  Handler code(std::string(kFrameByHand) + R"(
import fcntl, time
def handler(event, context):
    fcntl.fcntl(3, 1031, 4096)  # F_SETPIPE_SZ
    frame("response", b'{"answered": "by hand"}')
    time.sleep(3600)
)");
  create(l, "stall", code, {{"Timeout", 2}, {"SnapStart", {{"ApplyOn", "None"}}}});
  ASSERT_EQ(l.invoke("stall").body(), R"({"answered": "by hand"})");
  const std::string large = json{{"pad", std::string(1 << 20, 'x')}}.dump();
  const auto started = std::chrono::steady_clock::now();
  auto second = std::async(std::launch::async, [&] { return l.invoke("stall", large); });
  if (second.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "the invocation did not end with the function's timeout";
    thawd.kill_hard();  // ends the request the future waits for
    return;
  }
  const auto r = second.get();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
  EXPECT_EQ(r["X-Amz-Function-Error"], "Unhandled");
  EXPECT_NE(r.body().find("Sandbox.Timedout"), std::string::npos) << r.body();
  // Its slot is free again: nothing of it is left running.
  EXPECT_TRUE(eventually([&] { return l.instances().empty(); })) << l.instances();
  EXPECT_EQ(l.client.request(verb::get, "/healthz").result(), status::ok);
}

TEST(HostileFunctions, OutputIsCappedPerInvocationAndTheRestCounted) {
  // Without the memory thawd keeps warm for restores, which fills in the
  // background and would be measured instead.
  ThawdProcess thawd({"--max-output-kb", "64", "--warm-memory-mb", "0"});
  Lambda l(thawd);
  Handler code(R"(
import sys
def handler(event, context):
    line = "x" * 1023 + "\n"
    for _ in range(event["kb"]):
        sys.stdout.write(line)
    return {"done": True}
)");
  create(l, "chatty", code, kNoSnapshot);
  ASSERT_EQ(l.invoke("chatty", R"({"kb": 1})").result(), status::ok);
  const auto anonymous_kb = [&] {
    std::ifstream in("/proc/" + std::to_string(thawd.pid()) + "/status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8));
    return 0ull;
  };
  const auto before = anonymous_kb();
  const auto r = l.invoke("chatty", R"({"kb": 131072})", {{"X-Amz-Log-Type", "Tail"}});
  ASSERT_EQ(r.result(), status::ok) << r.body();
  EXPECT_EQ(r.body(), R"({"done": true})");
  std::string tail;
  tail.resize(boost::beast::detail::base64::decoded_size(r["X-Amz-Log-Result"].size()));
  const auto decoded = boost::beast::detail::base64::decode(
      tail.data(), r["X-Amz-Log-Result"].data(), r["X-Amz-Log-Result"].size());
  tail.resize(decoded.first);
  // 128 MiB written, 64 KiB kept.
  EXPECT_TRUE(std::regex_search(
      tail, std::regex(R"(\[thaw: 134152192 bytes of output dropped over the limit of 65536)")))
      << tail.substr(0, 300);
  // 128 MiB went through thawd; it kept 64 KiB of them.
  EXPECT_LT(anonymous_kb(), before + 32 * 1024) << "thawd grew from " << before << " kB";
  const auto metrics = l.client.request(verb::get, "/metrics").body();
  EXPECT_NE(metrics.find("thaw_output_dropped_bytes_total{function=\"chatty\"} 134152192"),
            std::string::npos)
      << metrics;
}

TEST(HostileFunctions, HeadersThatWouldSplitTheAnswerGet502) {
  ThawdProcess thawd;
  Lambda l(thawd);
  Handler code(R"(
def handler(event, context):
    kind = event["rawPath"].rsplit("/", 1)[1]
    headers = {"ok": {"X-Fine": "yes"},
               "crlf": {"X-Fine": "a\r\nX-Injected: 1"},
               "lf": {"X-Fine": "a\nX-Injected: 1"},
               "nul": {"X-Fine": "a\x00b"},
               "name": {"X-Bad Name": "v"},
               "colon": {"X-Injected: 1\r\nX": "v"},
               "length": {"Content-Length": "0"}}[kind]
    cookies = ["a=b\r\nX-Injected: 1"] if kind == "cookie" else []
    return {"statusCode": 200, "headers": headers, "cookies": cookies, "body": "hello"}
)");
  create(l, "split", code, kNoSnapshot);
  const auto ok = l.client.request(verb::get, "/function/split/ok");
  EXPECT_EQ(ok.result(), status::ok);
  EXPECT_EQ(ok["X-Fine"], "yes");
  for (const char* kind : {"crlf", "lf", "nul", "name", "colon"}) {
    const auto r = l.client.request(verb::get, std::string("/function/split/") + kind);
    EXPECT_EQ(r.result(), status::bad_gateway) << kind;
    EXPECT_EQ(r.find("X-Injected"), r.end()) << kind;
    EXPECT_EQ(r.body(), R"({"message":"Internal Server Error"})") << kind;
  }
  // A framing header is thawd's to write: the body still arrives whole.
  const auto length = l.client.request(verb::get, "/function/split/length");
  EXPECT_EQ(length.result(), status::ok);
  EXPECT_EQ(length.body(), "hello");
}

TEST(HostileFunctions, TmpHoldsABoundedNumberOfFiles) {
  ThawdProcess thawd;
  Lambda l(thawd);
  Handler code(R"(
import errno, os
def handler(event, context):
    n = 0
    try:
        while n < 300000:
            os.close(os.open("/tmp/f%d" % n, os.O_CREAT | os.O_WRONLY, 0o600))
            n += 1
    except OSError as e:
        return {"files": n, "error": errno.errorcode[e.errno]}
    return {"files": n, "error": None}
)");
  create(l, "inodes", code, {{"Timeout", 120}, {"SnapStart", {{"ApplyOn", "None"}}}});
  const auto r = l.invoke("inodes");
  ASSERT_EQ(r.result(), status::ok) << r.body();
  const auto answer = json::parse(r.body());
  ASSERT_TRUE(answer.contains("files")) << r.body();
  EXPECT_EQ(answer["error"], "ENOSPC");
  // 512 MB of /tmp: an inode per 16 KiB, as ext4 makes by default.
  EXPECT_LE(answer["files"].get<int>(), 32768);
  EXPECT_GT(answer["files"].get<int>(), 30000);
}

TEST(HostileFunctions, TheSnapshotsCopyOfTmpNeverLeavesTheInstance) {
  ThawdProcess thawd;
  Lambda l(thawd);
  // Init leaves a thread that keeps exchanging a directory with a link to
  // the host's /etc, and a FIFO nobody writes to.
  Handler code(R"(
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/tmp/d/inner")
with open("/tmp/d/inner/mine", "w") as f:
    f.write("the instance's own")
os.symlink("/etc", "/tmp/l")
os.mkfifo("/tmp/fifo")
def swap():
    while True:
        libc.syscall(316, -100, b"/tmp/d", -100, b"/tmp/l", 2)  # renameat2 RENAME_EXCHANGE
threading.Thread(target=swap, daemon=True).start()
def handler(event, context):
    return {"tmp": sorted(os.listdir("/tmp"))}
)");
  create(l, "swap", code);
  ASSERT_EQ(l.invoke("swap", "{}", {{"X-Thaw-Start-Mode", "cold"}}).result(), status::ok);
  // Made (or refused) in bounded time: the FIFO does not hold the copy up.
  ASSERT_TRUE(eventually(
      [&] {
        return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1 ||
               thawd.log().find("snapshot of swap failed") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << thawd.log();
  // Nothing of the host's /etc was copied, whatever the copy met.
  size_t host_files = 0;
  for (const auto& e : fs::recursive_directory_iterator(
           thawd.state_dir() + "/snapshots", fs::directory_options::skip_permission_denied)) {
    const auto name = e.path().filename().string();
    if (name == "passwd" || name == "apt" || name == "hostname" || name == "fstab") ++host_files;
  }
  EXPECT_EQ(host_files, 0u);
  EXPECT_TRUE(alive(thawd.pid()));
  if (l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1) {
    const auto r = l.invoke("swap", "{}", {{"X-Thaw-Start-Mode", "restore"}});
    EXPECT_EQ(r.result(), status::ok) << r.body();
    EXPECT_EQ(r["X-Thaw-Start-Mode"], "restore");
    EXPECT_EQ(r.body().find("fifo"), std::string::npos) << "a FIFO is not copied: " << r.body();
  }
}

TEST(HostileThawd, ARestartRightAfterKill9StartsAndASecondThawdIsRefused) {
  ThawdProcess first;
  const auto state = first.state_dir();
  first.kill_hard();
  ThawdProcess second({}, state);
  HttpClient c(second.port(), second.token());
  EXPECT_EQ(c.request(verb::get, "/healthz").result(), status::ok);
  // The lock, not a pid, says the directory is taken.
  const auto [st, out] = run_program({THAWD_PATH, "--listen", "127.0.0.1:0", "--state-dir", state,
                                      "--cgroup-parent", second.cgroup_parent()});
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("holds this state directory's lock"), std::string::npos) << out;
  EXPECT_NE(out.find(std::to_string(second.pid())), std::string::npos) << out;
}

// thawd stops in steps (running events finish, instances end, cgroups go):
// the directory stays claimed until the last one, else a second thawd could
// start in it and have its instances ended by the first.
TEST(HostileThawd, TheStateDirectoryStaysClaimedUntilTheStopHasFinished) {
  ThawdProcess thawd;
  Lambda l(thawd);
  Handler code("import time\ndef handler(event, context):\n    time.sleep(3)\n    return {}\n");
  create(l, "slow", code, json{{"Timeout", 10}, {"SnapStart", {{"ApplyOn", "None"}}}});
  ASSERT_EQ(l.invoke("slow", "{}", {{"X-Amz-Invocation-Type", "Event"}}).result(),
            status::accepted);
  ASSERT_TRUE(eventually([&] { return l.instances().size() == 1; })) << "the event never started";
  ASSERT_EQ(kill(thawd.pid(), SIGTERM), 0);
  // Past the HTTP server's stop, while the event still runs.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  ASSERT_EQ(kill(thawd.pid(), 0), 0) << "thawd did not wait for its running event";
  EXPECT_TRUE(fs::exists(thawd.state_dir() + "/thawd.pid"));
  EXPECT_EQ(thawd.log().find("\"event\":\"stopped\""), std::string::npos);
  const auto [st, out] = run_program({THAWD_PATH, "--listen", "127.0.0.1:0", "--state-dir",
                                      thawd.state_dir(), "--cgroup-parent", thawd.cgroup_parent()});
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("holds this state directory's lock"), std::string::npos) << out;
  // A second signal does not cut the stop short.
  ASSERT_EQ(kill(thawd.pid(), SIGTERM), 0);
  const int st_first = thawd.wait();
  EXPECT_TRUE(WIFEXITED(st_first) && WEXITSTATUS(st_first) == 0) << st_first;
  EXPECT_FALSE(fs::exists(thawd.state_dir() + "/thawd.pid"));
  EXPECT_NE(thawd.log().find("\"event\":\"stopped\""), std::string::npos);
}

// Deleted functions' and replaced code stays while instances may run from
// it, and goes at the next start.
TEST(HostileThawd, CodeNoFunctionUsesIsRemovedAtTheNextStart) {
  const auto packages = [](const std::string& dir) {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir))
      n += e.is_directory() && e.path().filename().string().size() == 64;
    return n;
  };
  ThawdProcess first;
  const auto state = first.state_dir();
  {
    Lambda l(first);
    Handler kept("def handler(event, context):\n    return 1\n");
    Handler gone("def handler(event, context):\n    return 2\n");
    create(l, "kept", kept, kNoSnapshot);
    create(l, "gone", gone, kNoSnapshot);
    ASSERT_EQ(l.invoke("gone").body(), "2");
    ASSERT_EQ(l.client.request(verb::delete_, std::string(kFunctions) + "/gone").result(),
              status::no_content);
    EXPECT_EQ(packages(state + "/code"), 2u);
  }
  const int st = first.stop();
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  ThawdProcess second({}, state);
  Lambda l(second);
  EXPECT_EQ(packages(state + "/code"), 1u);
  EXPECT_NE(second.log().find("code_packages_collected"), std::string::npos);
  EXPECT_EQ(l.invoke("kept").body(), "1");
}

TEST(HostileThawd, TheStateIsPrivate) {
  ThawdProcess thawd;
  Lambda l(thawd);
  Handler code("def handler(event, context):\n    print('a line')\n    return {}\n");
  create(l, "private", code, kNoSnapshot);
  ASSERT_EQ(l.invoke("private").result(), status::ok);
  const auto mode = [](const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  };
  const auto& dir = thawd.state_dir();
  EXPECT_EQ(mode(dir) & 0066, 0u) << "others may list the state directory";
  EXPECT_EQ(mode(dir + "/thaw.db"), 0600u);
  EXPECT_EQ(mode(dir + "/thawd.pid"), 0600u);
  EXPECT_EQ(mode(dir + "/admin-token"), 0600u);
  EXPECT_EQ(mode(dir + "/logs"), 0700u);
  // Code and snapshots (functions' memory): nobody else lists them, and the
  // memory images are their function's owner's alone.
  EXPECT_EQ(mode(dir + "/code"), 0711u);
  EXPECT_EQ(mode(dir + "/snapshots"), 0711u);
  Handler snap("import os\nsecret = os.urandom(16)\ndef handler(event, context):\n    return {}\n");
  create(l, "snapped", snap);
  ASSERT_TRUE(eventually([&] { return l.get_json("/thaw/v1/snapshots")["Snapshots"].size() == 1; }))
      << thawd.log();
  size_t images = 0;
  for (const auto& e : fs::directory_iterator(dir + "/code")) {
    if (e.path().extension() == ".meta") {
      EXPECT_EQ(mode(e.path()), 0600u) << e.path();
    }
  }
  for (const auto& s : fs::directory_iterator(dir + "/snapshots")) {
    EXPECT_EQ(mode(s.path()), 0711u) << s.path();
    struct stat st {};
    ASSERT_EQ(stat((s.path() / "images").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    EXPECT_NE(st.st_uid, 0u) << "the images belong to the function's owner";
    for (const auto& i : fs::directory_iterator(s.path() / "images")) {
      EXPECT_EQ(mode(i.path()) & 0077, 0u) << i.path();
      ++images;
    }
  }
  EXPECT_GT(images, 0u);
}

namespace {

std::string post_header(const std::string& target, uint64_t length, const std::string& extra = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         extra + "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

}  // namespace

TEST(HostileRequests, ACredentialIsCheckedBeforeAnyBodyByte) {
  ThawdProcess thawd;
  const auto started = std::chrono::steady_clock::now();
  // 60 MB announced and none sent: the refusal comes from the header alone.
  HttpClient anonymous(thawd.port());
  anonymous.send(post_header(kFunctions, 60'000'000));
  const auto missing = anonymous.read_response(std::chrono::seconds(5));
  EXPECT_EQ(missing.result(), status::unauthorized);
  EXPECT_EQ(missing["x-amzn-ErrorType"], "UnrecognizedClientException");
  EXPECT_FALSE(missing.keep_alive());
  HttpClient wrong(thawd.port());
  wrong.send(post_header(kFunctions, 60'000'000, "Authorization: Bearer not-the-token\r\n"));
  EXPECT_EQ(wrong.read_response(std::chrono::seconds(5)).result(), status::forbidden);
  // A signature by an unknown key, likewise.
  HttpClient unsigned_key(thawd.port());
  unsigned_key.send(post_header(kFunctions, 60'000'000,
                                "X-Amz-Date: 20260101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 "
                                "Credential=AKIANOTAKEY/20260101/us-east-1/lambda/aws4_request, "
                                "SignedHeaders=host;x-amz-date, Signature=" +
                                    std::string(64, 'a') + "\r\n"));
  EXPECT_EQ(unsigned_key.read_response(std::chrono::seconds(5)).result(), status::forbidden);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
}

TEST(HostileRequests, ConnectionsAreCappedPerClientAndInAll) {
  ThawdProcess thawd({"--max-connections-per-client", "4"});
  std::vector<std::unique_ptr<HttpClient>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<HttpClient>(thawd.port(), thawd.token()));
    ASSERT_EQ(held.back()->request(verb::get, "/healthz").result(), status::ok);
  }
  HttpClient fifth(thawd.port(), thawd.token());
  const auto refused = fifth.read_response(std::chrono::seconds(5));
  EXPECT_EQ(refused.result(), status::service_unavailable);
  EXPECT_EQ(refused["x-amzn-ErrorType"], "ServiceUnavailableException");
  // A closed connection makes room.
  held.pop_back();
  EXPECT_TRUE(eventually([&] {
    HttpClient again(thawd.port(), thawd.token());
    return again.request(verb::get, "/healthz").result() == status::ok;
  }));
}

TEST(HostileRequests, BodiesBufferedAtOnceAreCapped) {
  ThawdProcess thawd({"--max-buffered-body-mb", "8"});
  // One authenticated body of 6 MB on its way holds 6 of the 8 MB.
  HttpClient slow(thawd.port());
  slow.send(post_header(std::string(kFunctions) + "/f/invocations", 6'000'000,
                        "Authorization: Bearer " + thawd.token() + "\r\n") +
            "{\"a\":\"");
  Lambda l(thawd);
  ASSERT_TRUE(eventually([&] {
    return l.client.request(verb::get, "/metrics")
               .body()
               .find("thaw_http_buffered_body_bytes 6000000") != std::string::npos;
  }));
  HttpClient second(thawd.port());
  second.send(post_header(std::string(kFunctions) + "/f/invocations", 6'000'000,
                          "Authorization: Bearer " + thawd.token() + "\r\n"));
  const auto refused = second.read_response(std::chrono::seconds(5));
  EXPECT_EQ(refused.result(), status::service_unavailable);
  EXPECT_EQ(refused["x-amzn-ErrorType"], "ServiceUnavailableException");
  // Small requests still pass, and the refusal is counted.
  const auto metrics = l.client.request(verb::get, "/metrics").body();
  EXPECT_NE(metrics.find("thaw_http_refused_total{reason=\"buffered_bodies\"} 1"),
            std::string::npos)
      << metrics;
}

TEST(HostileRequests, LogFollowersHoldNoHttpThread) {
  // Two HTTP threads in all: one per invocation at once, and one more.
  ThawdProcess thawd({"--max-concurrency", "1", "--http-threads", "1"});
  Lambda l(thawd);
  Handler code("def handler(event, context):\n    print('line', event['n'])\n    return event\n");
  create(l, "logged", code, kNoSnapshot);
  ASSERT_EQ(l.invoke("logged", R"({"n": 1})").result(), status::ok);
  const auto end = l.get_json("/thaw/v1/functions/logged/logs")["NextOffset"].get<uint64_t>();
  // More followers than threads, each waiting up to 30 s for the log to grow.
  std::vector<std::unique_ptr<HttpClient>> followers;
  for (int i = 0; i < 6; ++i) {
    followers.push_back(std::make_unique<HttpClient>(thawd.port(), thawd.token()));
    followers.back()->send("GET /thaw/v1/functions/logged/logs?offset=" + std::to_string(end) +
                           "&wait=30 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                           thawd.token() + "\r\n\r\n");
  }
  ASSERT_TRUE(eventually([&] {
    return l.client.request(verb::get, "/metrics").body().find("thaw_log_followers 6") !=
           std::string::npos;
  }));
  // An invocation is still served at once, and its lines reach every follower.
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(l.invoke("logged", R"({"n": 2})").result(), status::ok);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  for (auto& f : followers) {
    const auto page = f->read_response(std::chrono::seconds(10));
    EXPECT_EQ(page.result(), status::ok);
    EXPECT_NE(json::parse(page.body())["Text"].get<std::string>().find("line 2"), std::string::npos)
        << page.body();
  }
}
