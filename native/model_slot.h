// A JS object's one owning reference to its loaded model, shared with queued runs: a run takes the
// model when it starts, and finds it gone if dispose() came first. dispose() empties the slot, so
// the model is freed as soon as the runs that already took it finish, with no garbage collection.
#pragma once

#include <memory>
#include <mutex>

namespace film {

template <typename M>
class Slot {
 public:
  explicit Slot(std::shared_ptr<M> model) : model_(std::move(model)) {}
  std::shared_ptr<M> Get() {
    std::lock_guard<std::mutex> lock(mutex_);
    return model_;
  }
  void Reset() {
    std::shared_ptr<M> dropped;  // freed after the lock is released
    std::lock_guard<std::mutex> lock(mutex_);
    dropped.swap(model_);
  }

 private:
  std::mutex mutex_;
  std::shared_ptr<M> model_;
};

}  // namespace film
