#pragma once
// A directory for one test, removed with everything in it when the test ends,
// passed or failed.

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace thaw::test {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/thaw-unit-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace thaw::test
