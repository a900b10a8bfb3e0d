// A failed system call as Node words it: "ENOSPC: no space left on device, write '<path>'", with
// err.code the errno's name (EEXIST, ENOSPC, ...), for the file writer and the placement renames.
#pragma once

#include <string>

namespace film {

[[noreturn]] void ThrowErrno(int error, const char* call, const std::string& path);

}  // namespace film
