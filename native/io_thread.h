// One process-wide thread for file writes: apart from the executor (a write must neither hold a
// core nor wait for an extract to finish) and from libuv's pool (shared with fs, dns and sharp).
// Jobs run one at a time, in order; a cancelled one runs as a no-op (Task::Execute) and settles.
// Like the executor it is never destroyed, and at process exit it drops queued jobs and waits for
// the running one (which may free tensors).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "executor.h"

namespace film {

class IoThread {
 public:
  static IoThread& Get();

  // Runs job->Execute(1), then job->Finished(); after ShutdownAtExit, drops it.
  void Submit(std::shared_ptr<Job> job);
  // Process exit: drops queued jobs and waits for the running one. Idempotent.
  void ShutdownAtExit();

 private:
  IoThread() = default;
  void Loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool started_ = false;
  bool running_ = false;
  bool exiting_ = false;
};

}  // namespace film
