// The two renames of the writer's placement rule (lib/batch/place.ts), which Node's fs lacks:
// renameat2's RENAME_NOREPLACE (into a free place only: not over a file, nor over an empty folder
// that appeared meanwhile) and RENAME_EXCHANGE (two names swap what they point at, atomically, so
// what was at the target can be looked at before anything is deleted, and swapped back).
#pragma once

#include <napi.h>

#include <string>

namespace film {

enum class RenameMode { kNoReplace, kExchange };

// False where the file system cannot (EINVAL, ENOSYS, EOPNOTSUPP); throws any other failure
// with Node's code (EEXIST, ENOENT, ...).
bool RenameAt(const std::string& from, const std::string& to, RenameMode mode);

// rename(from, to, 'noreplace' | 'exchange') -> Promise<boolean>, on the I/O thread: false where
// the file system has no such rename.
Napi::Value RenameJs(const Napi::CallbackInfo& info);

}  // namespace film
