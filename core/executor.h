// The only way core code runs in parallel: callers inject an Executor (core never starts threads).
#pragma once

#include <cstdint>
#include <functional>

namespace coset {

class Executor {
 public:
  virtual ~Executor() = default;
  // Calls fn(begin, end) over disjoint ranges covering [0, n) and returns when all are done.
  virtual void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) = 0;
  virtual int concurrency() const = 0;
};

// Runs everything on the calling thread.
Executor* InlineExecutor();

}  // namespace coset
