#include "promise_task.h"

#include "addon_data.h"
#include "io_thread.h"

namespace film {

std::shared_ptr<EnvLink> EnvLink::Create(Napi::Env env) {
  auto link = std::make_shared<EnvLink>();
  napi_value name = Napi::String::New(env, "film-features");
  // The function owns a reference to the link until Node finalizes it, at the latest when the env
  // is torn down; tasks own theirs. Either may go first.
  auto* owner = new std::shared_ptr<EnvLink>(link);
  napi_status status = napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, owner, &EnvLink::Finalize,
                                                       nullptr, &EnvLink::CallJs, &link->tsfn_);
  if (status != napi_ok) {
    delete owner;
    NAPI_THROW_IF_FAILED(env, status, nullptr);
  }
  napi_unref_threadsafe_function(env, link->tsfn_);
  link->open_ = true;
  // Runs when the env starts shutting down (worker terminate(), process.exit()); from then on
  // nothing is handed to it.
  napi_add_env_cleanup_hook(env, &EnvLink::Cleanup, owner);
  return link;
}

void EnvLink::Cleanup(void* arg) {
  EnvLink* link = static_cast<std::shared_ptr<EnvLink>*>(arg)->get();
  std::unique_lock<std::mutex> lock(link->mutex_);
  if (link->open_) {
    link->open_ = false;
    napi_release_threadsafe_function(link->tsfn_, napi_tsfn_abort);
  }
  // The env's running work finishes before its teardown goes on: a worker_thread that is terminated
  // or exits must not leave libtorch running when the process, which waits for its workers, exits.
  // Queued work never starts (Enter). Running work never needs this thread to finish.
  link->left_.wait(lock, [&] { return link->running_ == 0; });
}

bool EnvLink::Enter() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_) return false;
  ++running_;
  return true;
}

void EnvLink::Leave() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
  }
  left_.notify_all();
}

void EnvLink::Finalize(napi_env env, void* data, void* /*hint*/) {
  auto* owner = static_cast<std::shared_ptr<EnvLink>*>(data);
  {
    std::lock_guard<std::mutex> lock((*owner)->mutex_);
    (*owner)->open_ = false;
  }
  napi_remove_env_cleanup_hook(env, &EnvLink::Cleanup, owner);
  delete owner;
}

void EnvLink::Hold(napi_env env) {
  if (pending_++ == 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (open_) napi_ref_threadsafe_function(env, tsfn_);
  }
}

void EnvLink::Release(napi_env env) {
  if (--pending_ == 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (open_) napi_unref_threadsafe_function(env, tsfn_);
  }
}

bool EnvLink::Post(std::shared_ptr<Task> task) {
  if (Executor::Exiting()) return false;  // Node's loops are going away with the process
  auto* carried = new std::shared_ptr<Task>(std::move(task));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (open_ && napi_call_threadsafe_function(tsfn_, carried, napi_tsfn_nonblocking) == napi_ok) return true;
  }
  delete carried;
  return false;
}

void EnvLink::CallJs(napi_env env, napi_value /*callback*/, void* /*context*/, void* data) {
  std::unique_ptr<std::shared_ptr<Task>> task(static_cast<std::shared_ptr<Task>*>(data));
  // env is null when Node empties the queue of a function being torn down: just free.
  if (env != nullptr) (*task)->Settle(env);
}

Task::Task(Napi::Env env, int want_threads) : link_(AddonData::From(env)->link) {
  want = want_threads;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_promise(env, &deferred_, &promise_));
}

Napi::Promise Task::Submit(Napi::Env env, const std::shared_ptr<Task>& task) {
  Napi::Promise promise(env, task->promise_);
  task->promise_ = nullptr;
  if (task->on_io_thread_) {
    IoThread::Get().Submit(task);
  } else {
    Executor::Get().Submit(task);
  }
  // Held once queued (a failure to queue throws, and must not keep the loop alive); the task can
  // settle only on this thread, so no earlier.
  task->link_->Hold(env);
  return promise;
}

void Task::Cancel() {
  cancelled_ = true;
  if (!on_io_thread_) Executor::Get().Cancel(shared_from_this());  // the I/O thread skips it when its turn comes
}

void Task::Execute(int threads) {
  if (cancelled_ || !link_->Enter()) return;  // cancelled, or its env is gone: nobody takes the result
  try {
    Run(threads);
  } catch (...) {
    error_ = DescribeCurrentException();
  }
  link_->Leave();
}

void Task::Finished() { link_->Post(shared_from_this()); }

void Task::Dropped() { link_->Post(shared_from_this()); }

// JS thread, or Node's teardown of the env (then JS can no longer run, and every napi call below
// may fail: failures are ignored, and no C++ exception leaves this function).
void Task::Settle(napi_env env) {
  napi_handle_scope scope = nullptr;
  napi_open_handle_scope(env, &scope);
  napi_value value = nullptr;
  bool ok = false;
  const bool aborted = cancelled_;
  try {
    if (aborted) {
      error_ = ErrorInfo{ErrorKind::kError, code::kAborted, "The operation was aborted"};
    } else if (!error_) {
      value = Result(Napi::Env(env));
      ok = true;
    }
  } catch (const Napi::Error& e) {
    EnsureCode(e);
    value = e.Value();
  } catch (...) {
    error_ = DescribeCurrentException();
  }
  if (!ok && !value && error_) value = MakeError(env, *error_);
  if (!value) napi_get_undefined(env, &value);
  if (ok) {
    napi_resolve_deferred(env, deferred_, value);
  } else {
    if (aborted) {
      napi_value name = nullptr;
      if (napi_create_string_utf8(env, "AbortError", NAPI_AUTO_LENGTH, &name) == napi_ok) {
        napi_set_named_property(env, value, "name", name);
      }
    }
    napi_reject_deferred(env, deferred_, value);
  }
  deferred_ = nullptr;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  link_->Release(env);
  if (scope) napi_close_handle_scope(env, scope);
}

}  // namespace film
