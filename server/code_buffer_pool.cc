#include "server/code_buffer_pool.h"

#include <utility>

namespace coset {

int64_t CodeBufferPool::CapacityOf(const CompressedTensor& t) {
  return static_cast<int64_t>(t.symbols.capacity() + t.t.capacity() + sizeof(uint16_t) * t.scales.capacity());
}

CompressedTensor CodeBufferPool::Take(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = kept_.rbegin(); it != kept_.rend(); ++it) {
    const int64_t capacity = CapacityOf(*it);
    if (capacity >= bytes - bytes / 8 && capacity <= bytes + bytes / 8) {
      CompressedTensor t = std::move(*it);
      kept_.erase(std::next(it).base());
      bytes_ -= capacity;
      return t;
    }
  }
  return CompressedTensor();
}

void CodeBufferPool::Give(CompressedTensor t) {
  const int64_t capacity = CapacityOf(t);
  if (capacity < kMinKeptBytes) return;
  CompressedTensor evicted;  // freed outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes_ + capacity > max_bytes_) return;
    if (static_cast<int>(kept_.size()) == kMaxKept) {  // the oldest goes
      evicted = std::move(kept_.front());
      kept_.erase(kept_.begin());
      bytes_ -= CapacityOf(evicted);
    }
    bytes_ += capacity;
    kept_.push_back(std::move(t));
  }
}

std::shared_ptr<CompressedTensor> CodeBufferPool::Lend(int64_t bytes) {
  return std::shared_ptr<CompressedTensor>(new CompressedTensor(bytes > 0 ? Take(bytes) : CompressedTensor()),
                                           [this](CompressedTensor* t) {
                                             Give(std::move(*t));
                                             delete t;
                                           });
}

int64_t CodeBufferPool::Clear() {
  std::vector<CompressedTensor> freed;
  int64_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    freed.swap(kept_);
    bytes = std::exchange(bytes_, 0);
  }
  return bytes;
}

int64_t CodeBufferPool::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace coset
