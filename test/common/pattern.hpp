// SPDX-License-Identifier: BSD-2-Clause
//
// Test data, one generator for every suite: byte i of the pattern with
// seed s is pat(s, i). It is not periodic over small strides, so bytes
// that land shifted, swapped or in another transfer's place show.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tbtest {

inline uint8_t pat(uint64_t seed, size_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull + seed * 0xc2b2ae3d27d4eb4full;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return static_cast<uint8_t>(x ^ (x >> 32));
}

// p[k] = pat(seed, base + k).
void fill(void *p, size_t n, uint64_t seed, size_t base = 0);

// How many of p[k] differ from pat(seed, base + k); prints the first one.
size_t mismatches(const void *p, size_t n, uint64_t seed, size_t base = 0,
                  const char *what = "data");

// FNV-1a: a peer reports a digest of its bytes instead of the bytes.
uint64_t fnv1a(const void *p, size_t n);

}  // namespace tbtest
