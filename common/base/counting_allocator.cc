// Replaces the malloc family with wrappers that count each allocation
// (common/base/heap_allocation_counter.h) and hand it to glibc's own allocator
// (its __libc_* entry points, which glibc exports so that a program may wrap
// malloc). Linked into a binary only in test builds without a sanitizer:
// the dynamic linker then binds every library's malloc (libstdc++'s operator
// new, OpenSSL, liburing) to these. free and malloc_usable_size stay
// glibc's: the memory is glibc's.
#include <cerrno>
#include <cstddef>

#include "common/base/heap_allocation_counter.h"

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* pointer, size_t size);
void* __libc_memalign(size_t alignment, size_t size);

void* malloc(size_t size) {
  mf::heap_allocation_counter_detail::count_one();
  return __libc_malloc(size);
}

void* calloc(size_t count, size_t size) {
  mf::heap_allocation_counter_detail::count_one();
  return __libc_calloc(count, size);
}

void* realloc(void* pointer, size_t size) {
  mf::heap_allocation_counter_detail::count_one();
  return __libc_realloc(pointer, size);
}

void* memalign(size_t alignment, size_t size) {
  mf::heap_allocation_counter_detail::count_one();
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) {
  mf::heap_allocation_counter_detail::count_one();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
  mf::heap_allocation_counter_detail::count_one();
  void* pointer = __libc_memalign(alignment, size);
  if (pointer == nullptr) return ENOMEM;
  *out = pointer;
  return 0;
}
}

namespace {
// Before main: the counter reports itself counted only in a binary that
// links this file.
struct MarkCounted {
  MarkCounted() { mf::heap_allocation_counter_detail::mark_counted(); }
} mark_counted;
}  // namespace
