#include "rename.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "errors.h"
#include "promise_task.h"
#include "sys_error.h"

namespace film {
namespace {

// glibc has renameat2 from 2.28 only; the system call is older (Linux 3.15).
int Renameat2(const char* from, const char* to, unsigned flags) {
#ifdef SYS_renameat2
  return static_cast<int>(::syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags));
#else
  errno = ENOSYS;
  return -1;
#endif
}

constexpr unsigned kNoReplace = 1;  // RENAME_NOREPLACE
constexpr unsigned kExchange = 2;   // RENAME_EXCHANGE

class RenameTask : public Task {
 public:
  RenameTask(Napi::Env env, std::string from, std::string to, RenameMode mode)
      : Task(env, 1), from_(std::move(from)), to_(std::move(to)), mode_(mode) {
    on_io_thread_ = true;
  }

 protected:
  void Run(int /*threads*/) override { done_ = RenameAt(from_, to_, mode_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, done_); }

 private:
  std::string from_;
  std::string to_;
  RenameMode mode_;
  bool done_ = false;
};

bool IsPath(const Napi::Value& value) {
  if (!value.IsString()) return false;
  const std::string path = value.As<Napi::String>();
  return !path.empty() && path.find('\0') == std::string::npos;
}

}  // namespace

bool RenameAt(const std::string& from, const std::string& to, RenameMode mode) {
  if (Renameat2(from.c_str(), to.c_str(), mode == RenameMode::kExchange ? kExchange : kNoReplace) == 0) return true;
  if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) return false;
  ThrowErrno(errno, "rename", from + "' -> '" + to);
}

Napi::Value RenameJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    FILM_TYPE_ERROR_IF(info.Length() != 3 || !IsPath(info[0]) || !IsPath(info[1]) || !info[2].IsString(),
                       "rename(from: string, to: string, mode: 'noreplace' | 'exchange')");
    const std::string mode = info[2].As<Napi::String>();
    FILM_TYPE_ERROR_IF(mode != "noreplace" && mode != "exchange", "mode must be 'noreplace' or 'exchange'");
    return Task::Submit(env, std::make_shared<RenameTask>(env, info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                                          mode == "exchange" ? RenameMode::kExchange : RenameMode::kNoReplace));
  });
}

}  // namespace film
