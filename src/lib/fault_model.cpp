// SPDX-License-Identifier: BSD-2-Clause
#include "fault_model.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace tb {

namespace {

const char *env(const char *name) noexcept
{
    const char *v = std::getenv(name);
    return v && *v ? v : nullptr;
}

double env_probability(const char *name, double def)
{
    const char *v = env(name);
    if (!v)
        return def;
    char *end = nullptr;
    errno = 0;
    double d = std::strtod(v, &end);
    if (errno || *end || !(d >= 0.0 && d <= 1.0))
        throw error(EINVAL, std::string(name) + "='" + v +
                                "': expected a probability between 0 and 1");
    return d;
}

uint64_t env_unsigned(const char *name, uint64_t def, uint64_t max)
{
    const char *v = env(name);
    if (!v)
        return def;
    char *end = nullptr;
    errno = 0;
    unsigned long long u = std::strtoull(v, &end, 0);
    if (errno || *end || *v == '-' || u > max)
        throw error(EINVAL, std::string(name) + "='" + v +
                                "': expected an integer from 0 to " + std::to_string(max));
    return u;
}

// Spreads a seed over 64 bits (splitmix64 finaliser).
uint64_t mix(uint64_t x) noexcept
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

}  // namespace

soft_link_options soft_link_options::from_env()
{
    soft_link_options o;
    o.loss = env_probability("TB_SOFT_LOSS", o.loss);
    o.dup = env_probability("TB_SOFT_DUP", o.dup);
    o.reorder = env_probability("TB_SOFT_REORDER", o.reorder);
    o.delay_us = static_cast<uint32_t>(env_unsigned("TB_SOFT_DELAY_US", o.delay_us, 10000000));
    o.rate_mbps = env_unsigned("TB_SOFT_RATE_MBPS", o.rate_mbps, 1000000000);
    o.latency_ns = static_cast<uint32_t>(env_unsigned("TB_SOFT_LATENCY_NS", o.latency_ns, 1000000000));
    o.seed = env_unsigned("TB_SOFT_SEED", o.seed, UINT64_MAX);
    o.ring_slots = static_cast<uint32_t>(env_unsigned("TB_SOFT_SLOTS", o.ring_slots, 4096));
    return o;
}

fault_model::odds fault_model::make_odds(double p) noexcept
{
    odds o;
    if (!(p > 0.0))
        return o;
    if (p >= 1.0) {
        o.always = true;
        return o;
    }
    o.below = static_cast<uint64_t>(std::ldexp(p, 64));
    return o;
}

fault_model::fault_model(const soft_link_options &o, uint64_t stream) noexcept
    : loss_(make_odds(o.loss)), dup_(make_odds(o.dup)), reorder_(make_odds(o.reorder)),
      fixed_ns_(uint64_t(o.latency_ns) + uint64_t(o.delay_us) * 1000), rate_mbps_(o.rate_mbps)
{
    uint64_t seed = o.seed;
    while (!seed && getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        ;
    state_ = mix(seed ^ mix(stream));
    if (!state_)
        state_ = 1;
    timed_ = fixed_ns_ || rate_mbps_;
    active_ = timed_ || loss_.below || loss_.always || dup_.below || dup_.always ||
              reorder_.below || reorder_.always;
}

uint64_t fault_model::next() noexcept
{
    uint64_t x = state_;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state_ = x;
    return x * 0x2545f4914f6cdd1dull;
}

bool fault_model::chance(const odds &o) noexcept
{
    if (o.always)
        return true;
    return o.below && next() < o.below;
}

uint64_t fault_model::deliver_at(uint64_t now, uint32_t len) noexcept
{
    if (!timed_)
        return 0;
    uint64_t done = now;
    if (rate_mbps_) {
        // len * 8 bits at rate_mbps Mb/s takes len * 8000 / rate ns.
        uint64_t start = wire_free_ns_ > now ? wire_free_ns_ : now;
        wire_free_ns_ = start + (uint64_t(len) * 8000 + rate_mbps_ - 1) / rate_mbps_;
        done = wire_free_ns_;
    }
    return done + fixed_ns_;
}

}  // namespace tb
