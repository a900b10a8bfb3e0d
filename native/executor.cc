#include "executor.h"

#include <algorithm>
#include <cstdlib>

#include "threads.h"

namespace film {
namespace {
std::atomic<bool> exiting{false};
}  // namespace

bool Executor::Exiting() { return exiting.load(); }

void Executor::ShutdownAtExit() {
  exiting = true;
  std::unique_lock<std::mutex> lock(mutex_);
  exiting_ = true;
  counters_.completed += queue_.size();
  queue_.clear();  // never Dropped(): no env will take them now
  counters_.queued = 0;
  idle_.clear();
  wake_.wait(lock, [&] { return counters_.running == 0 && !idle_running_; });
}

Executor& Executor::Get() {
  // FILM_FEATURES_CORES overrides the affinity mask's count (containers whose CPU quota is lower).
  static Executor* executor = [] {
    int cores = UsableCores();
    if (const char* env = std::getenv("FILM_FEATURES_CORES")) {
      const int n = std::atoi(env);
      if (n > 0) cores = n;
    }
    auto* created = new Executor(cores);
    std::atexit([] { Executor::Get().ShutdownAtExit(); });
    return created;
  }();
  return *executor;
}

Executor::Executor(int capacity) : default_capacity_(capacity), capacity_(capacity), free_(capacity) {
  counters_.capacity = capacity;
}

int Executor::Concurrency(int n) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (n < 0) return capacity_;
    const int to = n == 0 ? default_capacity_ : n;
    // While idle work runs it holds every core (free_ is 0) and gives back capacity_ when done.
    if (!idle_running_) free_ += to - capacity_;
    capacity_ = to;
    counters_.capacity = to;
    if (threads_started_ > 0) StartThreads();
  }
  wake_.notify_all();
  return n == 0 ? default_capacity_ : n;
}

void Executor::Submit(std::shared_ptr<Job> job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (exiting_) return;
  StartThreads();
  queue_.push_back(std::move(job));
  counters_.queued = static_cast<int>(queue_.size());
  wake_.notify_one();
}

void Executor::StartThreads() {
  // One thread per core is enough: every running job holds at least one core. Detached: the
  // executor lives as long as the process (a lowered capacity leaves the extra threads waiting).
  for (; threads_started_ < capacity_; ++threads_started_) std::thread([this] { WorkerLoop(); }).detach();
}

void Executor::WhenIdle(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (exiting_) return;
  StartThreads();
  idle_.push_back(std::move(fn));
  wake_.notify_one();
}

bool Executor::Cancel(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = std::find(queue_.begin(), queue_.end(), job);
    if (it == queue_.end()) return false;
    queue_.erase(it);
    counters_.queued = static_cast<int>(queue_.size());
    ++counters_.completed;
  }
  job->Dropped();
  return true;
}

ExecutorCounters Executor::Counters() {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

void Executor::WorkerLoop() {
  for (;;) {
    std::shared_ptr<Job> job;
    int threads = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return !exiting_ && ((!queue_.empty() && free_ > 0) || Idle()); });
      if (queue_.empty()) {
        // Idle work: every core taken, so no job starts until it is done.
        std::vector<std::function<void()>> tasks;
        tasks.swap(idle_);
        free_ = 0;
        idle_running_ = true;
        lock.unlock();
        for (auto& task : tasks) task();
        lock.lock();
        free_ = capacity_;
        idle_running_ = false;
        lock.unlock();
        wake_.notify_all();
        continue;
      }
      // FIFO; while others wait, the free cores are shared out among them (a lone job gets all
      // it wants, a burst a core or two each, which gives more images/s on small frames).
      const int share = std::max(1, free_ / static_cast<int>(queue_.size()));
      job = std::move(queue_.front());
      queue_.pop_front();
      threads = std::min({std::clamp(job->want, 1, capacity_), share, free_});
      free_ -= threads;
      counters_.queued = static_cast<int>(queue_.size());
      ++counters_.running;
      counters_.threads += threads;
      counters_.peak_threads = std::max(counters_.peak_threads, counters_.threads);
      if (!queue_.empty() && free_ > 0) wake_.notify_one();
    }
    SetCallerThreads(threads);
    const int observed = CallerThreads();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      counters_.observed += observed;
      counters_.peak_observed = std::max(counters_.peak_observed, counters_.observed);
    }
    job->Execute(threads);  // never throws: jobs keep their own exception boundary
    {
      std::lock_guard<std::mutex> lock(mutex_);
      free_ += threads;
      --counters_.running;
      counters_.threads -= threads;
      counters_.observed -= observed;
      ++counters_.completed;
    }
    wake_.notify_all();
    // Settled only now, so that whoever awaits the job sees counters without it.
    job->Finished();
    job.reset();  // drop the job's resources (a disposed model, say) before the next
  }
}

}  // namespace film
