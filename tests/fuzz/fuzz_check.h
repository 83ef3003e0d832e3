// An invariant of a fuzz target: when it fails, the target aborts, so libFuzzer (or the replay
// test) reports the input that broke it.
#pragma once

#include <cstdio>
#include <cstdlib>

#define COSET_FUZZ_CHECK(cond)                                                               \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
