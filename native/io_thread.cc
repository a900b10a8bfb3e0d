#include "io_thread.h"

#include <cstdlib>
#include <thread>

namespace film {

IoThread& IoThread::Get() {
  static IoThread* io = [] {
    auto* created = new IoThread();
    std::atexit([] { IoThread::Get().ShutdownAtExit(); });
    return created;
  }();
  return *io;
}

void IoThread::Submit(std::shared_ptr<Job> job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (exiting_) return;
  if (!started_) {
    std::thread([this] { Loop(); }).detach();  // may throw: then nothing is queued
    started_ = true;
  }
  queue_.push_back(std::move(job));
  wake_.notify_one();
}

void IoThread::ShutdownAtExit() {
  // First the executor's: from then on no finished task, ours included, is handed to an env
  // (whichever atexit handler runs first).
  Executor::Get().ShutdownAtExit();
  std::unique_lock<std::mutex> lock(mutex_);
  exiting_ = true;
  queue_.clear();  // never Dropped(): no env will take them now
  wake_.wait(lock, [&] { return !running_; });
}

void IoThread::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return !exiting_ && !queue_.empty(); });
    std::shared_ptr<Job> job = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    lock.unlock();
    job->Execute(1);  // Task::Execute catches everything
    job->Finished();
    job.reset();  // frees what the job held (a written level) before the exit wait ends
    lock.lock();
    running_ = false;
    wake_.notify_all();
  }
}

}  // namespace film
