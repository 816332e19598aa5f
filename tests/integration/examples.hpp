#pragma once
// Where the example functions of images/examples live, for tests.

#include <filesystem>
#include <fstream>
#include <string>

namespace thaw::itest {

inline std::string example(const std::string& name) {
  return std::string(THAW_SOURCE_DIR) + "/images/examples/" + name;
}

// The npm package aws-lambda-ric, as scripts/install-deps installs it for the
// end-to-end tests; "" when it is not there.
inline std::string npm_ric() {
  const std::string ric = std::string(THAW_SOURCE_DIR) + "/tests/e2e/node_modules/aws-lambda-ric";
  return std::filesystem::exists(ric + "/dist/rapid-client.node") ? ric : "";
}

// A provided function's package as a user would build it on aws-lambda-ric:
// node-hello's handler, a bootstrap that starts the client, node_modules.
inline void write_ric_package(const std::string& ric, const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir + "/node_modules/aws-lambda-ric");
  for (const char* part : {"package.json", "bin", "dist"})
    fs::copy(ric + "/" + part, dir + "/node_modules/aws-lambda-ric/" + part,
             fs::copy_options::recursive);
  fs::copy_file(example("node-hello") + "/index.js", dir + "/index.js");
  std::ofstream(dir + "/bootstrap")
      << "#!/bin/sh\ncd /var/task\nexec /usr/bin/node "
         "/var/task/node_modules/aws-lambda-ric/bin/index.mjs index.handler\n";
  fs::permissions(dir + "/bootstrap", fs::perms(0755));
}

}  // namespace thaw::itest
