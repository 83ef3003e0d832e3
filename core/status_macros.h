// Small Status helpers: Abseil 20220623 ships Status/StatusOr but no RETURN_IF_ERROR macros.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define COSET_CONCAT_INNER(a, b) a##b
#define COSET_CONCAT(a, b) COSET_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define COSET_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status coset_status_ = (expr);         \
    if (!coset_status_.ok()) return coset_status_; \
  } while (0)

// `lhs = value-of(rexpr)` for an absl::StatusOr, or returns its error.
#define COSET_ASSIGN_OR_RETURN(lhs, rexpr) \
  COSET_ASSIGN_OR_RETURN_IMPL(COSET_CONCAT(coset_statusor_, __LINE__), lhs, rexpr)
#define COSET_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

// Always-on check for "cannot happen" invariants. Never use it on user or request data.
#define COSET_CHECK(cond)                                                                 \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: COSET_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

#ifdef NDEBUG
#define COSET_DCHECK(cond) \
  do {                     \
  } while (0)
#else
#define COSET_DCHECK(cond) COSET_CHECK(cond)
#endif
