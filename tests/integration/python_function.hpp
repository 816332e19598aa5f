#pragma once
// A Python function written by a test: its code in a directory of its own
// (removed with it), created through the Lambda API of a real thawd.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lambda_client.hpp"
#include "lambda_requests.hpp"

namespace thaw::itest {

class Handler {
 public:
  explicit Handler(const std::string& source) {
    char templ[] = "/tmp/thaw-handler-XXXXXX";
    dir_ = mkdtemp(templ);
    std::ofstream(dir_ + "/handler.py") << source;
  }
  ~Handler() { std::filesystem::remove_all(dir_); }
  Handler(const Handler&) = delete;
  Handler& operator=(const Handler&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// CreateFunction with handler.handler on python3.11; `extra` adds or
// replaces fields of the request.
inline void create(Lambda& l, const std::string& name, const Handler& code,
                   const nlohmann::json& extra = nlohmann::json::object()) {
  nlohmann::json body = {{"FunctionName", name},
                         {"Runtime", "python3.11"},
                         {"Handler", "handler.handler"},
                         {"Role", "arn:aws:iam::000000000000:role/test"},
                         {"Code", {{"ZipFile", zip_base64(code.dir())}}}};
  body.update(extra);
  const auto r = l.client.request(http::verb::post, kFunctions, body.dump());
  ASSERT_EQ(r.result(), http::status::created) << r.body();
}

// SnapStart off: every start is cold.
inline const nlohmann::json kNoSnapshot = {{"SnapStart", {{"ApplyOn", "None"}}}};

}  // namespace thaw::itest
