// CPU emulation of the CUDA build, for uavrt.kernels.emulator (a test device, not a fast path).
// propagate.cu itself is compiled here as host code: its kernels read blockIdx/blockDim/threadIdx
// from the globals below, and uav_emu_launch runs a kernel body once for every thread of every
// block of a launch grid (sequentially), taking its arguments from a cuLaunchKernel-style
// kernelParams array (one pointer per argument). Built with the host build's flags
// (g++ -O2 -ffp-contract=off, see propagate.h).
#include <stddef.h>
#include <string.h>

#include <type_traits>
#include <utility>

struct uav_dim3 {
    unsigned int x, y, z;
};
static uav_dim3 threadIdx, blockIdx, blockDim, gridDim;

// Memory checking: a launch may touch only the allocations its pointer arguments point into
// (set by uav_emu_set_ranges); any other load or store is counted and skipped, as a GPU would
// fault (CUDA_ERROR_ILLEGAL_ADDRESS) instead of reading a neighbour's bytes.
static unsigned long long uav_emu_ranges[32];  // [start, end) pairs
static int uav_emu_nranges;
static long long uav_emu_nfaults;
static unsigned long long uav_emu_first_fault;

static inline bool uav_emu_access_ok(const void* p, size_t n) {
    unsigned long long a = (unsigned long long)p;
    for (int r = 0; r < uav_emu_nranges; ++r)
        if (a >= uav_emu_ranges[2 * r] && a + n <= uav_emu_ranges[2 * r + 1]) return true;
    if (uav_emu_nfaults++ == 0) uav_emu_first_fault = a;
    return false;
}
#define UAV_ACCESS_OK(ptr) uav_emu_access_ok((ptr), sizeof(*(ptr)))

#define __global__
#define __forceinline__ inline
#include "propagate.h"  // the host branch: software half conversions, uav_half
typedef uav_half __half;
#include "propagate.cu"  // includes propagate.h again: a no-op (#pragma once)

// The kernels of propagate.cu, each listed once (the emulator checks this list against the CUBIN).
#define UAV_EMU_KERNELS(X) \
    X(uav_propagate_step_f32) X(uav_propagate_step_f16) X(uav_flow_warp_f32) X(uav_flow_warp_f16) X(uav_fb_check_f32)

namespace {

template <typename A>
constexpr char type_code() {  // 'P' pointer, 'F' float, 'L' 64-bit integer, 'I' 32-bit integer
    return std::is_pointer<A>::value ? 'P' : std::is_floating_point<A>::value ? 'F' : sizeof(A) == 8 ? 'L' : 'I';
}

template <typename... A, size_t... I>
void call(void (*kernel)(A...), void** params, std::index_sequence<I...>) {
    kernel(*static_cast<typename std::remove_reference<A>::type*>(params[I])...);
}

// Every thread of every block, in launch order or (reverse != 0) the exact reverse: a kernel whose
// threads depend on each other's writes gives different results in the two orders.
template <typename... A>
void run_grid(void (*kernel)(A...), const unsigned int* grid, const unsigned int* block, void** params,
              int reverse) {
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    const unsigned long long nb = (unsigned long long)grid[0] * grid[1] * grid[2];
    const unsigned long long nt = (unsigned long long)block[0] * block[1] * block[2];
    for (unsigned long long i = 0; i < nb; ++i) {
        unsigned long long b = reverse ? nb - 1 - i : i;
        blockIdx = {(unsigned int)(b % grid[0]), (unsigned int)(b / grid[0] % grid[1]),
                    (unsigned int)(b / grid[0] / grid[1])};
        for (unsigned long long j = 0; j < nt; ++j) {
            unsigned long long t = reverse ? nt - 1 - j : j;
            threadIdx = {(unsigned int)(t % block[0]), (unsigned int)(t / block[0] % block[1]),
                         (unsigned int)(t / block[0] / block[1])};
            call(kernel, params, std::index_sequence_for<A...>{});
        }
    }
}

template <typename... A>
int signature(void (*)(A...), char* codes, int* sizes) {
    const char c[] = {type_code<A>()..., 0};
    const int s[] = {(int)sizeof(A)..., 0};
    for (size_t i = 0; i < sizeof...(A); ++i) {
        codes[i] = c[i];
        sizes[i] = s[i];
    }
    return (int)sizeof...(A);
}

}  // namespace

extern "C" {

// Names of the emulated kernels, space separated.
const char* uav_emu_kernels() {
#define UAV_NAME(k) #k " "
    return UAV_EMU_KERNELS(UAV_NAME);
#undef UAV_NAME
}

// The C++ parameter list of kernel `name` as type codes and sizes; returns the count, -1 if unknown.
int uav_emu_signature(const char* name, char* codes, int* sizes) {
#define UAV_SIG(k) \
    if (strcmp(name, #k) == 0) return signature(k, codes, sizes);
    UAV_EMU_KERNELS(UAV_SIG)
#undef UAV_SIG
    return -1;
}

// The allocations the next launches may touch: n [start, end) pairs (at most 16).
int uav_emu_set_ranges(const unsigned long long* ranges, int n) {
    if (n < 0 || n > 16) return -1;
    for (int i = 0; i < 2 * n; ++i) uav_emu_ranges[i] = ranges[i];
    uav_emu_nranges = n;
    uav_emu_nfaults = 0;
    return 0;
}

// Loads and stores refused since uav_emu_set_ranges; *first: the first refused address.
long long uav_emu_faults(unsigned long long* first) {
    *first = uav_emu_first_fault;
    return uav_emu_nfaults;
}

// Run kernel `name` over grid x block with params[i] pointing at argument i; -1 if unknown.
int uav_emu_launch(const char* name, const unsigned int* grid, const unsigned int* block, void** params,
                   int reverse) {
#define UAV_RUN(k)                                     \
    if (strcmp(name, #k) == 0) {                       \
        run_grid(k, grid, block, params, reverse);     \
        return 0;                                      \
    }
    UAV_EMU_KERNELS(UAV_RUN)
#undef UAV_RUN
    return -1;
}

}  // extern "C"
