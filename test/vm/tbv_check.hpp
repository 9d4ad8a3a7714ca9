// The verbs test programs' checks (tbv_uverbs, tbv_pattern): a PASS: or
// FAIL: line each, which run-verbs.sh counts, and the failures so far.
#ifndef TBV_CHECK_HPP
#define TBV_CHECK_HPP

#include <cstdio>
#include <string>

namespace tbv_test {

inline int failures = 0;

inline void check(bool ok, const std::string &what)
{
    std::printf("%s: %s\n", ok ? "PASS" : "FAIL", what.c_str());
    if (!ok)
        ++failures;
}

}  // namespace tbv_test

#endif  // TBV_CHECK_HPP
