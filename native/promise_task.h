// Promise-returning work on the addon's executor, safe against worker_threads that end while work
// is in flight. A Task is made on the JS thread, runs on an executor thread, and is handed back
// through its env's EnvLink. Once the env is closing, finished tasks are dropped without touching
// JS; nothing here throws a C++ exception into Node's frames. Reused by every binding class.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>

#include "errors.h"
#include <condition_variable>

#include "executor.h"

namespace film {

class Task;

// One per env (the main thread and each worker_thread): a thread-safe function that brings
// finished tasks back to the JS thread, and knows when the env is going away.
class EnvLink {
 public:
  static std::shared_ptr<EnvLink> Create(Napi::Env env);

  // JS thread: a task is pending / settled; the event loop stays alive while any is pending.
  void Hold(napi_env env);
  void Release(napi_env env);
  // Any thread: hands the task to the JS thread. False when the env is closing: the task is dropped.
  bool Post(std::shared_ptr<Task> task);
  // Executor threads, around a task's work: Enter is false once the env is closing (skip the work);
  // the env's cleanup waits until every entered task has left.
  bool Enter();
  void Leave();

 private:
  static void CallJs(napi_env env, napi_value callback, void* context, void* data);
  static void Finalize(napi_env env, void* data, void* hint);
  static void Cleanup(void* arg);

  std::mutex mutex_;
  std::condition_variable left_;
  int running_ = 0;  // tasks between Enter and Leave
  bool open_ = false;
  napi_threadsafe_function tsfn_ = nullptr;
  int pending_ = 0;  // JS thread only
};

class Task : public Job, public std::enable_shared_from_this<Task> {
 public:
  // JS thread.
  explicit Task(Napi::Env env, int want_threads = 1);
  ~Task() override = default;

  // JS thread: queues the task on the executor (or the I/O thread, io_thread.h); returns its promise.
  static Napi::Promise Submit(Napi::Env env, const std::shared_ptr<Task>& task);
  // JS thread: a queued task is dropped at once, a running one has its result discarded; either
  // way the promise rejects with an AbortError.
  void Cancel();

 protected:
  // Executor thread: the work. Throw to reject.
  virtual void Run(int threads) = 0;
  // JS thread: the value to resolve with. Throw to reject.
  virtual Napi::Value Result(Napi::Env env) = 0;

  // Set in the constructor: the task writes files, and runs on the I/O thread instead of the executor.
  bool on_io_thread_ = false;

 private:
  void Execute(int threads) final;
  void Finished() final;
  void Dropped() final;
  void Settle(napi_env env);
  friend class EnvLink;

  std::shared_ptr<EnvLink> link_;
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;  // valid only during the call that made the task
  std::optional<ErrorInfo> error_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace film
