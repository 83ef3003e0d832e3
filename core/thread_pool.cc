#include "core/thread_pool.h"

#include <algorithm>

namespace coset {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  std::unique_lock<std::mutex> lock(mu_);
  fn_ = &fn;
  n_ = n;
  next_ = 0;
  // A few ranges per thread balance uneven rows without much scheduling overhead.
  grain_ = std::max<int64_t>(1, n / (4 * concurrency()));
  pending_ = (n + grain_ - 1) / grain_;
  ++generation_;
  work_ready_.notify_all();
  // The calling thread works too.
  while (next_ < n_) {
    const int64_t begin = next_;
    const int64_t end = std::min(n_, begin + grain_);
    next_ = end;
    lock.unlock();
    fn(begin, end);
    lock.lock();
    --pending_;
  }
  work_done_.wait(lock, [this] { return pending_ == 0; });
  fn_ = nullptr;
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_ready_.wait(lock, [&] { return stop_ || (generation_ != seen && fn_ != nullptr && next_ < n_); });
    if (stop_) return;
    while (fn_ != nullptr && next_ < n_) {
      const int64_t begin = next_;
      const int64_t end = std::min(n_, begin + grain_);
      next_ = end;
      const auto* fn = fn_;
      lock.unlock();
      (*fn)(begin, end);
      lock.lock();
      if (--pending_ == 0) work_done_.notify_all();
    }
    seen = generation_;
  }
}

}  // namespace coset
