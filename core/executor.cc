#include "core/executor.h"

namespace coset {
namespace {

class InlineExecutorImpl final : public Executor {
 public:
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override {
    if (n > 0) fn(0, n);
  }
  int concurrency() const override { return 1; }
};

}  // namespace

Executor* InlineExecutor() {
  static InlineExecutorImpl executor;
  return &executor;
}

}  // namespace coset
