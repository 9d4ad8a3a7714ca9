// SPDX-License-Identifier: BSD-2-Clause
#include "pattern.hpp"

#include <cstdio>

namespace tbtest {

void fill(void *p, size_t n, uint64_t seed, size_t base)
{
    auto *c = static_cast<uint8_t *>(p);
    for (size_t k = 0; k < n; k++)
        c[k] = pat(seed, base + k);
}

size_t mismatches(const void *p, size_t n, uint64_t seed, size_t base, const char *what)
{
    auto *c = static_cast<const uint8_t *>(p);
    size_t bad = 0;
    for (size_t k = 0; k < n; k++) {
        if (c[k] == pat(seed, base + k))
            continue;
        if (!bad++)
            std::fprintf(stderr, "%s: byte %zu of %zu is 0x%02x, expected 0x%02x\n", what, k, n,
                         c[k], pat(seed, base + k));
    }
    return bad;
}

uint64_t fnv1a(const void *p, size_t n)
{
    auto *c = static_cast<const uint8_t *>(p);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

}  // namespace tbtest
