// The addon's own executor: process-wide (shared by the main thread and every worker_thread),
// sized to the cores, and separate from libuv's pool so that long runs never starve fs, dns or
// other addons. Admission counts threads, not jobs: a job runs once the intra-op threads granted
// to it fit in the cores left, so all jobs together never use more threads than there are cores.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace film {

class Job {
 public:
  virtual ~Job() = default;
  // On an executor thread, with `threads` cores granted; the thread's OpenMP team size is set.
  virtual void Execute(int threads) = 0;
  // After Execute, once its cores are counted free again: hands the outcome on. Any thread.
  virtual void Finished() {}
  // Instead of Execute, once, when the job was cancelled before it started; any thread.
  virtual void Dropped() = 0;

  // Threads the job would like (clamped to [1, capacity]); the grant may be smaller when others wait.
  int want = 1;
};

struct ExecutorCounters {
  int capacity = 0;            // cores: the most threads granted at once
  int queued = 0;              // jobs waiting for cores
  int running = 0;             // jobs executing
  int threads = 0;             // threads granted to running jobs
  int peak_threads = 0;        // the most `threads` has been
  // Tests only (binding._internal): what running jobs' threads report as their OpenMP team size,
  // summed, and the most that has been.
  int observed = 0;
  int peak_observed = 0;
  uint64_t completed = 0;      // jobs executed or dropped
};

class Executor {
 public:
  // The process's executor; created on first use, never destroyed (jobs may outlive any env).
  static Executor& Get();

  void Submit(std::shared_ptr<Job> job);
  // Removes a queued job (and calls its Dropped()); false when it has started or finished.
  bool Cancel(const std::shared_ptr<Job>& job);
  // Runs fn on an executor thread once no job runs or waits, holding every core while it runs (jobs
  // submitted meanwhile wait). Never on the caller's thread; dropped at process exit. fn must not throw.
  void WhenIdle(std::function<void()> fn);
  ExecutorCounters Counters();
  // The cores shared out (FeatureExtractor.concurrency()): n > 0 sets them, 0 restores the default
  // (the affinity mask's count, or FILM_FEATURES_CORES read once at start), < 0 leaves them. Jobs
  // running keep their grants; a smaller count only holds back the next ones. Returns the count.
  int Concurrency(int n);
  // Process exit: drops queued jobs and waits for the running ones, which would otherwise run on
  // inside libraries being torn down. Called from the main thread's process 'exit' event, and
  // from an atexit handler as a fallback. Idempotent.
  void ShutdownAtExit();
  // True once the process is exiting: finished jobs are no longer handed to any env.
  static bool Exiting();

 private:
  explicit Executor(int capacity);
  void WorkerLoop();
  void StartThreads();  // with mutex_ held
  bool Idle() const { return queue_.empty() && free_ == capacity_ && !idle_.empty(); }

  const int default_capacity_;
  int capacity_;
  int threads_started_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::function<void()>> idle_;  // waiting for an idle moment
  bool idle_running_ = false;
  int free_;  // below 0 while running jobs hold more than a lowered capacity
  bool exiting_ = false;
  ExecutorCounters counters_;
};

}  // namespace film
