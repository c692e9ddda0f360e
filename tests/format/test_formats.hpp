#pragma once
// The families of scalar formats the exhaustive tests cover: every format of 8 bits or fewer.
#include <functional>
#include <vector>

#include "lowbit/format/scalar_format.hpp"

namespace lowbit::test {

// Integers 1..8 bits (signed, unsigned, narrow) and binary.
std::vector<ScalarFormat> small_integer_formats();
// Every E/M split of 2..8 bits, with and without sign, under every special-value policy,
// subnormals on/off, saturating or not, with the default bias and a shifted one, and the
// no-zero variant (E8M0-like).
std::vector<ScalarFormat> small_minifloat_formats();
// ap_fixed / ap_ufixed with W = 1..8, several I (negative and above W), every quantization and
// overflow mode, N in {0, 1, 2, W}.
std::vector<ScalarFormat> small_fixed_formats();

}  // namespace lowbit::test
