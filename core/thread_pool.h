// A fixed-size thread pool implementing Executor, for binaries that own their threads (cosetctl,
// benchmarks, cosetd). Core algorithms never create one themselves.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/executor.h"

namespace coset {

class ThreadPool final : public Executor {
 public:
  // threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // coset::Executor
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override;
  int concurrency() const override { return static_cast<int>(workers_.size()) + 1; }

 private:
  void WorkerLoop();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::mutex call_mu_;  // one ParallelFor at a time
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t next_ = 0;
  int64_t grain_ = 1;
  int64_t pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace coset
