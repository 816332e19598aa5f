#pragma once
// Where the example functions of images/examples live, for tests.

#include <filesystem>
#include <fstream>
#include <string>

namespace thaw::itest {

// Where example() looks: the checkout's, or where reachable.hpp exposed them.
inline std::string& examples_root() {
  static std::string root = std::string(THAW_SOURCE_DIR) + "/images/examples";
  return root;
}

inline std::string example(const std::string& name) {
  return examples_root() + "/" + name;
}

// A provided function's package as a user would build it on the npm package
// aws-lambda-ric (which scripts/install-deps installs for the end-to-end
// tests): node-hello's handler, a bootstrap that starts the client,
// node_modules. Returns why it cannot be built, or "".
inline std::string write_ric_package(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string ric = std::string(THAW_SOURCE_DIR) + "/tests/e2e/node_modules/aws-lambda-ric";
  if (!fs::exists(ric + "/dist/rapid-client.node"))
    return "aws-lambda-ric is not installed (scripts/install-deps installs it from npm)";
  fs::create_directories(dir + "/node_modules/aws-lambda-ric");
  for (const char* part : {"package.json", "bin", "dist"})
    fs::copy(ric + "/" + part, dir + "/node_modules/aws-lambda-ric/" + part,
             fs::copy_options::recursive);
  fs::copy_file(example("node-hello") + "/index.js", dir + "/index.js");
  std::ofstream(dir + "/bootstrap")
      << "#!/bin/sh\ncd /var/task\nexec /usr/bin/node "
         "/var/task/node_modules/aws-lambda-ric/bin/index.mjs index.handler\n";
  fs::permissions(dir + "/bootstrap", fs::perms(0755));
  return "";
}

}  // namespace thaw::itest
