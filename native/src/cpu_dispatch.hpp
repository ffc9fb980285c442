// EMO3D_HOT: compile a hot function twice, for x86-64-v3 (AVX2 + FMA, CPUs since 2013-2015) and for
// the baseline, and pick one at load time from the running CPU (GCC function multi-versioning
// through an ifunc resolver). The wheel stays portable; on a v3 CPU the kernels use 256-bit SIMD
// and fused multiply-add. Results of the two clones differ only by float rounding (FMA contraction),
// well inside the tolerances the tests hold them to against the numpy references.
// Defining EMO3D_NO_MULTIVERSION (CMake option EMO3D_MULTIVERSION=OFF) builds the baseline only.
// Note: a lambda inside an EMO3D_HOT function is a separate function and is NOT cloned; put the
// loop in an EMO3D_HOT function that the lambda calls.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && \
    !defined(EMO3D_NO_MULTIVERSION)
#define EMO3D_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#define EMO3D_MULTIVERSIONED 1
// a function written for x86-64-v3 only (256-bit intrinsics), called where cpu_is_v3()
#define EMO3D_V3 __attribute__((target("arch=x86-64-v3")))
#define EMO3D_V4 __attribute__((target("arch=x86-64-v4")))
namespace emo3d {
// whether the running CPU is x86-64-v3 (the choice the EMO3D_HOT resolvers make)
inline bool cpu_is_v3() {
    static const bool v3 = (__builtin_cpu_init(), __builtin_cpu_supports("x86-64-v3"));
    return v3;
}
// whether the running CPU is x86-64-v4 (AVX-512 F/BW/CD/DQ/VL): a few kernels have a 512-bit version
// (written with EMO3D_V4, called where this holds)
inline bool cpu_is_v4() {
    static const bool v4 = (__builtin_cpu_init(), __builtin_cpu_supports("x86-64-v4"));
    return v4;
}
}  // namespace emo3d
#else
#define EMO3D_HOT
#define EMO3D_MULTIVERSIONED 0
#endif
