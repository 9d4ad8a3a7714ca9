// SPDX-License-Identifier: BSD-2-Clause
// The test module: every test_*.cpp in this directory registers its cases.
#define BOOST_TEST_MODULE tb
#include <boost/test/unit_test.hpp>
