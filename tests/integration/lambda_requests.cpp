#include "lambda_requests.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "thawd_process.hpp"

namespace thaw::itest {

std::string zip_base64(const std::string& dir) {
  auto [st, out] = run_program({"/usr/bin/python3", "-c",
                                "import base64,io,os,sys,zipfile\n"
                                "b=io.BytesIO()\n"
                                "with zipfile.ZipFile(b,'w') as z:\n"
                                "  for f in sorted(os.listdir(sys.argv[1])):\n"
                                "    z.write(os.path.join(sys.argv[1],f),f)\n"
                                "sys.stdout.write(base64.b64encode(b.getvalue()).decode())",
                                dir});
  EXPECT_EQ(WEXITSTATUS(st), 0) << out;
  return out;
}

std::string create_body(const std::string& name, const std::string& runtime,
                        const std::string& handler, const std::string& example) {
  return nlohmann::json{
      {"FunctionName", name},
      {"Runtime", runtime},
      {"Handler", handler},
      {"Role", "arn:aws:iam::000000000000:role/test"},
      {"Code",
       {{"ZipFile", zip_base64(std::string(THAW_SOURCE_DIR) + "/images/examples/" + example)}}}}
      .dump();
}

}  // namespace thaw::itest
