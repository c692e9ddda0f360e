#include "lowbit/hw/wide_int.hpp"

#include <gtest/gtest.h>

namespace lowbit::hw {
namespace {

TEST(WideInt, ArithmeticAndWidths) {
  const WideInt a(-5), b(3);
  EXPECT_EQ((a + b).to_int64(), -2);
  EXPECT_EQ((a - b).to_int64(), -8);
  EXPECT_EQ(a.shifted_left(100).shifted_right(100).to_int64(), -5);
  EXPECT_EQ(a.shifted_right(1).to_int64(), -3);  // floor
  EXPECT_EQ(WideInt(5).shifted_right(1).to_int64(), 2);
  EXPECT_EQ(WideInt(-8).signed_width(), 4);
  EXPECT_EQ(WideInt(-9).signed_width(), 5);
  EXPECT_EQ(WideInt(7).signed_width(), 4);
  EXPECT_EQ(WideInt(8).signed_width(), 5);
  EXPECT_EQ(WideInt(0).signed_width(), 1);
  EXPECT_EQ(WideInt(-1).signed_width(), 1);
  EXPECT_EQ(WideInt(255).unsigned_width(), 8);
  EXPECT_EQ(WideInt(1).shifted_left(200).unsigned_width(), 201);
  EXPECT_EQ(WideInt(-3).times(1000).to_int64(), -3000);
  EXPECT_EQ(WideInt(1).shifted_left(70).to_string(), "1180591620717411303424");
  EXPECT_EQ(WideInt(-255).to_hex(12), "f01");
  EXPECT_EQ(WideInt::from_hex("f01", 12, true).to_int64(), -255);
  EXPECT_EQ(WideInt::from_hex("f01", 12, false).to_int64(), 0xf01);
  EXPECT_EQ(WideInt::from_hex("00000001ffffffffffffffffffffffff", 100, true), WideInt(1).shifted_left(97) - WideInt(1));
  EXPECT_EQ(WideInt::from_hex("ffffffffffffffffffffffffffffffff", 100, true), WideInt(-1));
  const WideInt big = WideInt(-12345).shifted_left(150);
  EXPECT_EQ(WideInt::from_hex(big.to_hex(180), 180, true), big);
  EXPECT_THROW(WideInt::from_hex("xyz", 8, true), std::invalid_argument);
  EXPECT_THROW(WideInt(1).shifted_left(80).to_int64(), std::overflow_error);
}

}  // namespace
}  // namespace lowbit::hw
