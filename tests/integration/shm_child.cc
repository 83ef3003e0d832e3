// Helper process for the integration tests: connects to cosetd over a Unix socket, registers a
// shared-memory region and sends one large Encode through it, then prints "done". The test kills
// it mid-request to check that the daemon releases the region and keeps serving.
//   shm_child unix:/path/cosetd.sock MIB
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "client/coset_client.h"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  coset::Client::Options o;
  o.address = argv[1];
  auto client = *coset::Client::Connect(o);
  const int64_t n = std::atoll(argv[2]) * (1 << 20) / 4;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  std::printf("started\n");
  std::fflush(stdout);
  auto blob = client->Encode(x.data(), {n / 4096, 4096}, coset::CodecParams{});
  std::printf("%s %d\n", blob.ok() ? "done" : "error", client->used_shared_memory() ? 1 : 0);
  return blob.ok() ? 0 : 1;
}
