// HugePageAllocator: a std::allocator for the renderer's large arrays (the texture atlas, the
// per-triangle planes, the sample buffers) that asks Linux for 2 MiB pages.
//
// At 60 Hz the render thread idles ~13 ms between frames; other processes then evict its TLB
// entries, and the next frame's texture fetches and per-triangle reads each walk the page tables
// again (on a VM a two-level walk). With transparent huge pages on "madvise" (the default of many
// distributions) a 2 MiB-aligned block marked MADV_HUGEPAGE is backed by 2 MiB pages: the 6 MB
// atlas is 3-4 TLB entries instead of ~1,500. Blocks of at least kHugeMin bytes are allocated
// 2 MiB-aligned with their size rounded up to 2 MiB; smaller ones, and every block where the
// kernel has no transparent huge pages (or off Linux), are plain operator new. Layout only: the
// data and every result are the same.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace emo3d {

constexpr std::size_t kHugePage = std::size_t(2) << 20;
// blocks this large or larger get huge pages (rounded up to 2 MiB: at most 2x this in waste)
constexpr std::size_t kHugeMin = std::size_t(256) << 10;

// A block of n bytes, 2 MiB-aligned and marked for huge pages when n >= kHugeMin; release with
// huge_free(p, n) (the same n).
inline void* huge_alloc(std::size_t n) {
    if (n < kHugeMin) return ::operator new(n);
    const std::size_t rounded = (n + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, rounded, MADV_HUGEPAGE);  // a hint: where THP is off or "never" the block keeps 4 KiB pages
#endif
    return p;
}

inline void huge_free(void* p, std::size_t n) noexcept {
    if (n < kHugeMin)
        ::operator delete(p);
    else
        std::free(p);
}

template <class T>
struct HugePageAllocator {
    using value_type = T;
    HugePageAllocator() noexcept = default;
    template <class U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        if (n > std::size_t(-1) / sizeof(T)) throw std::bad_alloc();
        return static_cast<T*>(huge_alloc(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept { huge_free(p, n * sizeof(T)); }
    template <class U>
    bool operator==(const HugePageAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const HugePageAllocator<U>&) const noexcept { return false; }
};

}  // namespace emo3d
