// SPDX-License-Identifier: BSD-2-Clause
// The UCT test module: every test_*.cpp here registers its cases. It runs
// with the tb module LD_PRELOADed (run-uct.sh).
#define BOOST_TEST_MODULE tb_uct
#include <boost/test/unit_test.hpp>
