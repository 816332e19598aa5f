#pragma once
// Lambda request bodies for tests: CreateFunction with one example's code.

#include <string>

namespace thaw::itest {

// A zip of one directory's files, made with Python's zipfile (the test's own
// tool, not thaw's code), base64-encoded as CreateFunction takes it.
std::string zip_base64(const std::string& dir);

// CreateFunction's body for images/examples/<example>.
std::string create_body(const std::string& name, const std::string& runtime,
                        const std::string& handler, const std::string& example);

}  // namespace thaw::itest
