#pragma once
// How many heap allocations (malloc, calloc, realloc, posix_memalign,
// aligned_alloc, memalign; operator new goes through malloc) the process has
// made, for tests that prove a path allocates nothing in steady state
// (docs/architecture.md, "The relay path").
//
// Counted only in a binary that links common/base/counting_allocator.cc, which
// replaces the malloc family with counting wrappers around glibc's
// allocator; mf-edge does in builds with -Dtest_hooks=true and no sanitizer
// (a sanitizer brings its own allocator). Elsewhere heap_allocations_counted()
// is false and heap_allocations() is 0.
#include <cstdint>

namespace mf {

bool heap_allocations_counted();
// The sum over every thread; each thread adds to its own slot, so counting
// costs no locked instruction.
uint64_t heap_allocations();

namespace heap_allocation_counter_detail {
// Called by the counting allocator only.
void mark_counted();
void count_one();
}  // namespace heap_allocation_counter_detail

}  // namespace mf
