// Failures inside a model file's own TorchScript code, said in one line: which file, what failed,
// and the likely cause. The full interpreter trace goes along as the error's detail (err.cause).
#pragma once

#include <string>

#include "errors.h"

namespace film {

// The line that says what failed: a TorchScript trace ends with it ("RuntimeError: ...").
std::string ScriptFailureLine(const std::string& what);

// Call only inside a catch block. A UserError for the exception in flight, raised by the forward
// of the file at path while doing `during` ("interpolating 1x3x768x1024 frames"); UserErrors and
// out-of-memory errors (std::bad_alloc, c10::OutOfMemoryError) pass through unchanged.
[[noreturn]] void RethrowAsScriptFailure(const std::string& path, const std::string& during);

}  // namespace film
