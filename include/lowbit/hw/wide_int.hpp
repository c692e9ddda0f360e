#pragma once
// A two's complement integer of 1024 bits: the exact (Kulisch) accumulator of the emulation.
// Wide enough for two 16-bit minifloats with 2^8 binades each and a dot product of 2^40 terms.
#include <array>
#include <cstdint>
#include <string>

namespace lowbit::hw {

class WideInt {
 public:
  static constexpr int kBits = 1024;

  WideInt() = default;
  explicit WideInt(int64_t v);

  // Value modulo 2^width read as a two's complement (or unsigned) number of `width` bits.
  static WideInt from_hex(const std::string& hex, int width, bool is_signed);

  WideInt operator+(const WideInt& o) const;
  WideInt operator-(const WideInt& o) const;
  WideInt operator-() const;
  WideInt& operator+=(const WideInt& o) { return *this = *this + o; }
  WideInt shifted_left(int k) const;
  // Arithmetic shift right: floor(x / 2^k).
  WideInt shifted_right(int k) const;
  // x * m for a non-negative m (the dot-product length).
  WideInt times(uint64_t m) const;

  bool negative() const { return (limbs_[kLimbs - 1] >> 63) != 0; }
  bool operator==(const WideInt& o) const = default;
  bool operator<(const WideInt& o) const;
  bool operator>(const WideInt& o) const { return o < *this; }

  // Smallest W such that the value is in [-2^(W-1), 2^(W-1) - 1] (at least 1).
  int signed_width() const;
  // Smallest W such that a non-negative value is < 2^W (at least 1).
  int unsigned_width() const;
  // Low `width` bits as hexadecimal, most significant digit first, ceil(width / 4) digits.
  std::string to_hex(int width) const;
  // Decimal text (for messages and tables).
  std::string to_string() const;
  // Exact for values of at most 63 bits; throws otherwise.
  int64_t to_int64() const;

 private:
  static constexpr int kLimbs = kBits / 64;
  std::array<uint64_t, kLimbs> limbs_{};
};

}  // namespace lowbit::hw
